//! Building an index from the input tables.
//!
//! The build reads products, customers, orders and lines (row groups in
//! parallel), assigns dense ids, indexes every attribute, groups lines into
//! orders per customer, and writes everything into a temporary directory
//! that is renamed over the output only when complete.

use crate::chunk::{ChunkWriter, NULL_VALUE, ORDER_ATTR_COLUMNS, ORDER_ATTRS};
use crate::dates::{Bucket, DateBucketsBuilder, DateTable};
use crate::ids::{IntIdTable, PAGE_BITS};
use crate::model::*;
use crate::time::{Zone, date_of, month_day_slot, month_of};
use crate::{IndexError, Result};
use ahash::AHashMap;
use arrow_array::{Array, BooleanArray, Int64Array, ListArray, StringArray, UInt32Array};
use chrono::Datelike;
use rayon::prelude::*;
use segdex_bitmap::{Bitmap, BsiBuilder, SectionWriter};
use segdex_ingest::columns::{ValueClass, classify, col};
use segdex_ingest::tables::{Batch, Column, Table};
use segdex_ingest::{IngestError, Mapping, Sources};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// Options of a build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// IANA time zone for every calendar computation (default "UTC").
    pub timezone: String,
    /// Lines with an unknown order, customer or product are an error instead
    /// of being counted and skipped.
    pub strict: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            timezone: "UTC".into(),
            strict: false,
        }
    }
}

/// Builds the index of the tables under `data_dir` (read through the
/// mapping file if given) into the directory `out`, atomically: on any error
/// nothing is written and an existing index at `out` is left as it was.
/// `progress` is told each stage as it starts.
pub fn build_index(
    data_dir: &Path,
    mapping: Option<&Path>,
    out: &Path,
    opts: &BuildOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<BuildSummary> {
    let started = Instant::now();
    let zone = Zone::new(&opts.timezone).map_err(IndexError::Invalid)?;
    let mapping = mapping.map(Mapping::load).transpose()?;
    progress("checking input");
    let sources = Sources::resolve(data_dir, mapping.as_ref())?;

    let name = out
        .file_name()
        .ok_or_else(|| IndexError::Invalid(format!("{}: not a directory name", out.display())))?
        .to_string_lossy()
        .to_string();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| io_err(&parent, e))?;
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| io_err(&tmp, e))?;
    let result = write_index(&sources, &tmp, &zone, opts, progress, started);
    match result {
        Ok(mut summary) => {
            summary.bytes = dir_size(&tmp);
            replace_dir(&tmp, out)?;
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Reads a table's columns batch by batch with this crate's error type.
fn read_table<T: Send>(
    table: &Table,
    names: &[&str],
    f: impl Fn(&Batch<'_>) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    table.read::<T, IndexError, _>(names, f)
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> IndexError {
    IndexError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Moves the finished `tmp` directory to `out`, replacing an older index.
fn replace_dir(tmp: &Path, out: &Path) -> Result<()> {
    if out.exists() {
        if !out.join("manifest.json").is_file()
            && std::fs::read_dir(out)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            let _ = std::fs::remove_dir_all(tmp);
            return Err(IndexError::Invalid(format!(
                "{}: exists and is not a segdex index; refusing to replace it",
                out.display()
            )));
        }
        let old = out.with_file_name(format!(
            ".{}.old-{}",
            out.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        std::fs::rename(out, &old).map_err(|e| io_err(out, e))?;
        std::fs::rename(tmp, out).map_err(|e| io_err(out, e))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(tmp, out).map_err(|e| io_err(out, e))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Column plans and normalisation

#[derive(Debug, Clone, Copy, PartialEq)]
enum Conv {
    Str,
    Int,
    Bool,
    StrList,
    NumInt,
    NumDecimal(i8),
    NumFloat,
    Date,
    Timestamp,
}

#[derive(Debug, Clone)]
struct Plan {
    name: String,
    source: String,
    kind: FieldKind,
    conv: Conv,
}

/// A batch column in one of the few shapes the index needs.
enum Norm {
    Str(StringArray),
    Int(Int64Array),
    Bool(BooleanArray),
    List(ListArray),
    Dec(Vec<Option<i128>>),
    Float(Vec<Option<f64>>),
    Days(Vec<Option<i32>>),
}

fn normalize(batch: &Batch<'_>, i: usize, conv: Conv, zone: &Zone) -> Result<Norm> {
    let c = col(batch, i);
    Ok(match conv {
        Conv::Str => Norm::Str(c.utf8()?),
        Conv::Int | Conv::NumInt => Norm::Int(c.int64()?),
        Conv::Bool => Norm::Bool(c.bools()?),
        Conv::StrList => Norm::List(c.utf8_list()?),
        Conv::NumDecimal(_) => Norm::Dec(c.unscaled_decimals()?),
        Conv::NumFloat => Norm::Float(c.floats()?),
        Conv::Date => Norm::Days(c.days()?),
        Conv::Timestamp => Norm::Days(
            c.instants_ns()?
                .into_iter()
                .map(|v| v.map(|ns| zone.local_day(ns)))
                .collect(),
        ),
    })
}

fn wrong_type(table: &Table, column: &Column, expected: &str) -> IndexError {
    IndexError::Ingest(IngestError::WrongType {
        path: table.files[0].clone(),
        column: column.source.clone(),
        found: column.data_type.to_string(),
        expected: expected.to_string(),
    })
}

fn categorical_conv(table: &Table, c: &Column) -> Result<Conv> {
    match classify(&c.data_type) {
        ValueClass::Str => Ok(Conv::Str),
        ValueClass::Int => Ok(Conv::Int),
        _ => Err(wrong_type(table, c, "a string or integer")),
    }
}

/// The plan of a custom column, or `None` for a type that cannot be
/// indexed (the column is left out and a rule naming it gets an error).
fn custom_plan(c: &Column, products: bool) -> Option<Plan> {
    let (kind, conv) = match classify(&c.data_type) {
        ValueClass::Str => (FieldKind::Categorical, Conv::Str),
        ValueClass::StrList => (FieldKind::Multi, Conv::StrList),
        ValueClass::Bool => (FieldKind::Flag, Conv::Bool),
        ValueClass::Int if products => (FieldKind::Categorical, Conv::Int),
        ValueClass::Int => (FieldKind::Numeric, Conv::NumInt),
        ValueClass::Decimal(s) if !products => (FieldKind::Numeric, Conv::NumDecimal(s)),
        ValueClass::Float if !products => (FieldKind::Numeric, Conv::NumFloat),
        ValueClass::Date if !products => (FieldKind::Date, Conv::Date),
        ValueClass::Timestamp if !products => (FieldKind::Date, Conv::Timestamp),
        _ => return None,
    };
    Some(Plan {
        name: c.name.clone(),
        source: c.source.clone(),
        kind,
        conv,
    })
}

/// Plans of a table's columns, the stored-only ones, and the unindexable.
type Plans = (Vec<Plan>, Vec<String>, Vec<Unindexed>);

fn unindexed(c: &Column) -> Unindexed {
    Unindexed {
        name: c.name.clone(),
        data_type: c.data_type.to_string(),
    }
}

fn customer_plans(table: &Table) -> Result<Plans> {
    let mut plans = Vec::new();
    let mut stored = Vec::new();
    let mut skipped = Vec::new();
    for c in &table.columns {
        let plan = |kind, conv| Plan {
            name: c.name.clone(),
            source: c.source.clone(),
            kind,
            conv,
        };
        match c.name.as_str() {
            "customer_id" => {}
            "first_name" | "last_name" | "email" => stored.push(c.name.clone()),
            "customer_type" | "gender" | "country" | "postal_code" | "home_store_id"
            | "loyalty_tier" => {
                plans.push(plan(FieldKind::Categorical, categorical_conv(table, c)?))
            }
            "tags" => {
                if classify(&c.data_type) != ValueClass::StrList {
                    return Err(wrong_type(table, c, "a list of strings"));
                }
                plans.push(plan(FieldKind::Multi, Conv::StrList))
            }
            "birth_date" | "registered_at" | "last_contacted_at" | "med_id_expires_on" => {
                let conv = match classify(&c.data_type) {
                    ValueClass::Date => Conv::Date,
                    ValueClass::Timestamp => Conv::Timestamp,
                    _ => return Err(wrong_type(table, c, "a date or timestamp")),
                };
                plans.push(plan(FieldKind::Date, conv))
            }
            "loyalty_points_lifetime" | "loyalty_points_spendable" => {
                let conv = match classify(&c.data_type) {
                    ValueClass::Int => Conv::NumInt,
                    ValueClass::Decimal(s) => Conv::NumDecimal(s),
                    ValueClass::Float => Conv::NumFloat,
                    _ => return Err(wrong_type(table, c, "a number")),
                };
                plans.push(plan(FieldKind::Numeric, conv))
            }
            _ => match custom_plan(c, false) {
                Some(p) => plans.push(p),
                None => skipped.push(unindexed(c)),
            },
        }
    }
    Ok((plans, stored, skipped))
}

fn product_plans(table: &Table) -> Result<Plans> {
    let mut plans = Vec::new();
    let mut stored = Vec::new();
    let mut skipped = Vec::new();
    for c in &table.columns {
        match c.name.as_str() {
            "product_id" => {}
            "name" => stored.push(c.name.clone()),
            "sku" | "brand" | "product_type" | "strain" => plans.push(Plan {
                name: c.name.clone(),
                source: c.source.clone(),
                kind: FieldKind::Categorical,
                conv: categorical_conv(table, c)?,
            }),
            "tags" => {
                if classify(&c.data_type) != ValueClass::StrList {
                    return Err(wrong_type(table, c, "a list of strings"));
                }
                plans.push(Plan {
                    name: "product_tag".into(),
                    source: c.source.clone(),
                    kind: FieldKind::Multi,
                    conv: Conv::StrList,
                })
            }
            _ => match custom_plan(c, true) {
                Some(p) => plans.push(p),
                None => skipped.push(unindexed(c)),
            },
        }
    }
    Ok((plans, stored, skipped))
}

// ---------------------------------------------------------------------------
// Dictionaries and keys

/// Assigns dense codes to categorical values in first-seen order.
#[derive(Default)]
struct Dict {
    strs: AHashMap<String, u32>,
    ints: AHashMap<i64, u32>,
    values: Vec<Value>,
}

impl Dict {
    fn code_str(&mut self, s: &str) -> u32 {
        if let Some(&c) = self.strs.get(s) {
            return c;
        }
        let c = self.values.len() as u32;
        self.strs.insert(s.to_string(), c);
        self.values.push(Value::Str(s.to_string()));
        c
    }
    fn code_int(&mut self, v: i64) -> u32 {
        *self.ints.entry(v).or_insert_with(|| {
            self.values.push(Value::Int(v));
            (self.values.len() - 1) as u32
        })
    }
    fn code_bool(&mut self, b: bool) -> u32 {
        self.code_int(b as i64)
    }
    /// Sorted values and the map old code → position in them.
    fn finish(mut self, bools: bool) -> (Vec<Value>, Vec<u32>) {
        if bools {
            for v in &mut self.values {
                if let Value::Int(i) = v {
                    *v = Value::Bool(*i != 0);
                }
            }
        }
        let mut order: Vec<u32> = (0..self.values.len() as u32).collect();
        order.sort_by(|&a, &b| self.values[a as usize].cmp(&self.values[b as usize]));
        let mut remap = vec![0u32; order.len()];
        for (pos, &old) in order.iter().enumerate() {
            remap[old as usize] = pos as u32;
        }
        let values = order
            .iter()
            .map(|&o| self.values[o as usize].clone())
            .collect();
        (values, remap)
    }
}

/// An id column of one batch.
enum IdCol {
    Int(Int64Array),
    Str(StringArray),
}

impl IdCol {
    fn read(batch: &Batch<'_>, i: usize, kind: IdKind, what: &str) -> Result<Self> {
        let c = col(batch, i);
        match (kind, classify(c.array.data_type())) {
            (IdKind::Int, ValueClass::Int) => Ok(IdCol::Int(c.int64()?)),
            (IdKind::Str, ValueClass::Str) => Ok(IdCol::Str(c.utf8()?)),
            _ => Err(c
                .wrong_type(&format!(
                    "{} ids, like {what}",
                    if kind == IdKind::Int {
                        "int64"
                    } else {
                        "string"
                    }
                ))
                .into()),
        }
    }
    fn len(&self) -> usize {
        match self {
            IdCol::Int(a) => a.len(),
            IdCol::Str(a) => a.len(),
        }
    }
    fn is_null(&self, i: usize) -> bool {
        match self {
            IdCol::Int(a) => a.is_null(i),
            IdCol::Str(a) => a.is_null(i),
        }
    }
    fn show(&self, i: usize) -> String {
        match self {
            _ if self.is_null(i) => "null".into(),
            IdCol::Int(a) => a.value(i).to_string(),
            IdCol::Str(a) => format!("{:?}", a.value(i)),
        }
    }
}

fn id_kind(table: &Table, name: &str) -> Result<IdKind> {
    let c = table.require(name)?;
    match classify(&c.data_type) {
        ValueClass::Int => Ok(IdKind::Int),
        ValueClass::Str => Ok(IdKind::Str),
        _ => Err(wrong_type(table, c, "int64 or string ids")),
    }
}

/// External id → dense number.
/// External ids to dense numbers: int64 ids in a compact table (the build
/// looks one up per line, and holds 68M order ids at 10M customers), string
/// ids in a hash map.
enum IdMap {
    Int(IntIdTable),
    Str(AHashMap<String, u32>),
}

impl IdMap {
    /// A map for about `expected` ids, those of `cols`: int ids that fill
    /// most of their pages (auto-increment keys) are looked up in pages.
    fn for_ids<'a>(kind: IdKind, expected: u64, cols: impl Iterator<Item = &'a IdCol>) -> Self {
        match kind {
            IdKind::Int => {
                let pages = cols.flat_map(|c| match c {
                    IdCol::Int(a) => a.iter().flatten().map(|k| k >> PAGE_BITS).collect(),
                    IdCol::Str(_) => Vec::new(),
                });
                IdMap::Int(IntIdTable::for_pages(pages, expected as usize))
            }
            IdKind::Str => IdMap::Str(AHashMap::new()),
        }
    }

    fn get(&self, c: &IdCol, i: usize) -> Option<u32> {
        if c.is_null(i) {
            return None;
        }
        match (self, c) {
            (IdMap::Int(m), IdCol::Int(a)) => m.get(a.value(i)),
            (IdMap::Str(m), IdCol::Str(a)) => m.get(a.value(i)).copied(),
            _ => None,
        }
    }
    /// Inserts id `i` of `c` as `n`; false if it was already present.
    fn insert(&mut self, c: &IdCol, i: usize, n: u32) -> bool {
        match (self, c) {
            (IdMap::Int(m), IdCol::Int(a)) => m.insert(a.value(i), n),
            (IdMap::Str(m), IdCol::Str(a)) => m.insert(a.value(i).to_string(), n).is_none(),
            _ => false,
        }
    }
    /// Replaces every number `v` by `new[v]`.
    fn renumber(&mut self, new: &[u32]) {
        match self {
            IdMap::Int(m) => m.renumber(new),
            IdMap::Str(m) => m.values_mut().for_each(|v| *v = new[*v as usize]),
        }
    }
    /// Id of `i`, inserted as the next number if new.
    fn get_or_insert(&mut self, c: &IdCol, i: usize) -> u32 {
        match (self, c) {
            (IdMap::Int(m), IdCol::Int(a)) => {
                let n = m.len() as u32;
                m.get(a.value(i)).unwrap_or_else(|| {
                    m.insert(a.value(i), n);
                    n
                })
            }
            (IdMap::Str(m), IdCol::Str(a)) => {
                let n = m.len() as u32;
                if let Some(&v) = m.get(a.value(i)) {
                    return v;
                }
                m.insert(a.value(i).to_string(), n);
                n
            }
            _ => u32::MAX,
        }
    }
}

/// A keyed table's ids as [`read_keys`] numbers them: row `r` is the
/// `r`-th smallest id (integers by value, strings by their bytes), so
/// member lists in row order are ascending and lookups binary-search.
struct Keys {
    kind: IdKind,
    /// External id → row.
    map: IdMap,
    /// The id dictionary's values section, in row order.
    values: Vec<u8>,
    /// `file_rows[r]`: where row `r` is in the table's files (its position
    /// counting across files and batches); `None` when the files already
    /// list the ids ascending.
    file_rows: Option<Vec<u32>>,
    count: u32,
}

/// Reads a key column into an id dictionary, refusing nulls and
/// duplicates, and numbers the rows in ascending id order.
fn read_keys(table: &Table, key: &str, kind: IdKind) -> Result<Keys> {
    // Each batch's ids with its file and first row, for error messages.
    let batches = read_table(table, &[key], |b| {
        Ok((
            IdCol::read(b, 0, kind, "itself")?,
            b.file.to_path_buf(),
            b.first_row,
        ))
    })?;
    let mut map = IdMap::for_ids(kind, table.rows, batches.iter().map(|b| &b.0));
    let mut n: u32 = 0;
    let mut int_vals: Vec<i64> = Vec::new();
    let mut str_vals: Vec<String> = Vec::new();
    for (ids, file, first_row) in &batches {
        for i in 0..ids.len() {
            let err = |message: &str| {
                IndexError::Ingest(IngestError::BadValue {
                    path: file.clone(),
                    column: table
                        .column(key)
                        .map(|c| c.source.clone())
                        .unwrap_or_default(),
                    row: first_row + i as u64,
                    value: ids.show(i),
                    message: message.to_string(),
                })
            };
            if ids.is_null(i) {
                return Err(err(&format!("{key} is null")));
            }
            if !map.insert(ids, i, n) {
                return Err(err(&format!("duplicate {key}")));
            }
            match ids {
                IdCol::Int(a) => int_vals.push(a.value(i)),
                IdCol::Str(a) => str_vals.push(a.value(i).to_string()),
            }
            n = n.checked_add(1).ok_or_else(|| {
                IndexError::Invalid(format!("{}: more than 2^32 rows", table.location.display()))
            })?;
        }
    }
    // `order[r]`: the file position of the `r`-th smallest id.
    let mut order: Vec<u32> = (0..n).collect();
    match kind {
        IdKind::Int => order.par_sort_unstable_by_key(|&r| int_vals[r as usize]),
        IdKind::Str => {
            order.par_sort_unstable_by(|&a, &b| str_vals[a as usize].cmp(&str_vals[b as usize]))
        }
    }
    let mut values = Vec::new();
    match kind {
        IdKind::Int => {
            for &r in &order {
                values.extend_from_slice(&int_vals[r as usize].to_le_bytes());
            }
        }
        IdKind::Str => {
            let mut off = 0u64;
            values.extend_from_slice(&off.to_le_bytes());
            for &r in &order {
                off += str_vals[r as usize].len() as u64;
                values.extend_from_slice(&off.to_le_bytes());
            }
            for &r in &order {
                values.extend_from_slice(str_vals[r as usize].as_bytes());
            }
        }
    }
    let file_rows = if order.iter().enumerate().all(|(r, &f)| r as u32 == f) {
        None
    } else {
        let mut row_of_file = vec![0u32; n as usize];
        for (r, &f) in order.iter().enumerate() {
            row_of_file[f as usize] = r as u32;
        }
        map.renumber(&row_of_file);
        Some(order)
    };
    Ok(Keys {
        kind,
        map,
        values,
        file_rows,
        count: n,
    })
}

// ---------------------------------------------------------------------------
// Writing bitmaps and fields

struct Writer {
    w: SectionWriter,
    bitmaps: u64,
    empty: Option<u32>,
}

impl Writer {
    fn bitmap(&mut self, b: &Bitmap) -> Result<u32> {
        if b.is_empty()
            && let Some(e) = self.empty
        {
            return Ok(e);
        }
        let id = self.w.add_bitmap(b)?;
        self.bitmaps += 1;
        if b.is_empty() {
            self.empty = Some(id);
        }
        Ok(id)
    }
    /// A non-empty bitmap already in the portable format.
    fn serialized_bitmap(&mut self, bytes: &[u8]) -> Result<u32> {
        self.bitmaps += 1;
        self.bytes(bytes)
    }
    fn rows(&mut self, rows: &[u32]) -> Result<u32> {
        let b = Bitmap::from_sorted_iter(rows.iter().copied())
            .map_err(|_| IndexError::Invalid("internal: rows out of order".into()))?;
        self.bitmap(&b)
    }
    fn bytes(&mut self, bytes: &[u8]) -> Result<u32> {
        Ok(self.w.add(bytes)?)
    }
}

/// Buffers of [`write_field`] kept from one field to the next: a numeric
/// field's keys take 32 bytes a row, and memory freed and allocated again
/// is faulted in and zeroed by the kernel again.
#[derive(Default)]
struct FieldScratch {
    keys: Vec<(u32, i128)>,
    nulls: Vec<u32>,
}

/// Builds one field from its normalised batches (row numbers follow batch
/// order).
fn write_field(
    plan: &Plan,
    batches: &[&Norm],
    w: &mut Writer,
    scratch: &mut FieldScratch,
) -> Result<Field> {
    let mut field = Field {
        name: plan.name.clone(),
        source: plan.source.clone(),
        kind: plan.kind,
        values: Vec::new(),
        value_sections: Vec::new(),
        null_section: 0,
        bsi: None,
        dates: None,
        month_day_sections: Vec::new(),
        int_values: plan.conv == Conv::Int,
    };
    let nulls = &mut scratch.nulls;
    nulls.clear();
    let mut row: u32 = 0;
    match plan.kind {
        FieldKind::Categorical | FieldKind::Flag | FieldKind::Multi => {
            let mut dict = Dict::default();
            let mut rows: Vec<Vec<u32>> = Vec::new();
            let mut add = |code: u32, row: u32| {
                if rows.len() <= code as usize {
                    rows.resize_with(code as usize + 1, Vec::new);
                }
                let v = &mut rows[code as usize];
                if v.last() != Some(&row) {
                    v.push(row);
                }
            };
            for norm in batches {
                match norm {
                    Norm::Str(a) => {
                        for i in 0..a.len() {
                            if a.is_null(i) {
                                nulls.push(row);
                            } else {
                                add(dict.code_str(a.value(i)), row);
                            }
                            row += 1;
                        }
                    }
                    Norm::Int(a) => {
                        for i in 0..a.len() {
                            if a.is_null(i) {
                                nulls.push(row);
                            } else {
                                add(dict.code_int(a.value(i)), row);
                            }
                            row += 1;
                        }
                    }
                    Norm::Bool(a) => {
                        for i in 0..a.len() {
                            if a.is_null(i) {
                                nulls.push(row);
                            } else {
                                add(dict.code_bool(a.value(i)), row);
                            }
                            row += 1;
                        }
                    }
                    Norm::List(a) => {
                        let strings = a.values().as_any().downcast_ref::<StringArray>();
                        let offsets = a.value_offsets();
                        for i in 0..a.len() {
                            let mut any = false;
                            if !a.is_null(i)
                                && let Some(s) = strings
                            {
                                for j in offsets[i] as usize..offsets[i + 1] as usize {
                                    if !s.is_null(j) {
                                        add(dict.code_str(s.value(j)), row);
                                        any = true;
                                    }
                                }
                            }
                            if !any {
                                nulls.push(row);
                            }
                            row += 1;
                        }
                    }
                    _ => return Err(IndexError::Invalid("internal: categorical norm".into())),
                }
            }
            let (values, remap) = dict.finish(plan.kind == FieldKind::Flag);
            let mut sections = vec![0u32; values.len()];
            for (old, rows) in rows.iter_mut().enumerate() {
                if plan.kind == FieldKind::Multi {
                    rows.sort_unstable();
                    rows.dedup();
                }
                sections[remap[old] as usize] = w.rows(rows)?;
            }
            field.values = values;
            field.value_sections = sections;
        }
        FieldKind::Numeric | FieldKind::Date => {
            let keys = &mut scratch.keys;
            keys.clear();
            let mut md: Vec<Vec<u32>> = if plan.kind == FieldKind::Date {
                vec![Vec::new(); 366]
            } else {
                Vec::new()
            };
            for norm in batches {
                let n = match norm {
                    Norm::Int(a) => a.len(),
                    Norm::Dec(v) => v.len(),
                    Norm::Float(v) => v.len(),
                    Norm::Days(v) => v.len(),
                    _ => return Err(IndexError::Invalid("internal: numeric norm".into())),
                };
                for i in 0..n {
                    let key: Option<i128> = match norm {
                        Norm::Int(a) => (!a.is_null(i)).then(|| a.value(i) as i128),
                        Norm::Dec(v) => v[i],
                        Norm::Float(v) => {
                            v[i].filter(|x| x.is_finite()).map(|x| float_key(x) as i128)
                        }
                        Norm::Days(v) => v[i].map(|d| d as i128),
                        _ => None,
                    };
                    match key {
                        None => nulls.push(row),
                        Some(k) => {
                            keys.push((row, k));
                            if plan.kind == FieldKind::Date {
                                let d = date_of(k as i32);
                                md[month_day_slot(d.month(), d.day())].push(row);
                            }
                        }
                    }
                    row += 1;
                }
            }
            if plan.kind == FieldKind::Date {
                field.month_day_sections = md.iter().map(|r| w.rows(r)).collect::<Result<_>>()?;
                field.dates = Some(write_date_buckets(keys, w)?);
            } else {
                field.bsi = Some(write_bsi(plan, keys, w)?);
            }
        }
    }
    field.null_section = w.rows(nulls)?;
    Ok(field)
}

/// Writes a numeric field's bit-sliced index of `(row, key)` pairs.
fn write_bsi(plan: &Plan, keys: &[(u32, i128)], w: &mut Writer) -> Result<BsiMeta> {
    let min = keys.iter().map(|k| k.1).min().unwrap_or(0);
    let max = keys.iter().map(|k| k.1).max().unwrap_or(0);
    let encoding = match plan.conv {
        Conv::NumFloat => NumEncoding::Float { base: min as u64 },
        Conv::NumDecimal(scale) => NumEncoding::Decimal {
            base: i64::try_from(min).map_err(|_| too_wide(plan))?,
            scale,
        },
        _ => NumEncoding::Int {
            base: i64::try_from(min).map_err(|_| too_wide(plan))?,
        },
    };
    if !matches!(plan.conv, Conv::NumFloat) && i64::try_from(max).is_err() {
        return Err(too_wide(plan));
    }
    let mut b = BsiBuilder::new();
    for &(r, k) in keys {
        b.push(r, (k - min) as u64);
    }
    let bsi = b.build();
    let slices = bsi
        .slices
        .iter()
        .map(|s| w.bitmap(s))
        .collect::<Result<Vec<_>>>()?;
    let exists = w.bitmap(&bsi.exists)?;
    Ok(BsiMeta {
        encoding,
        slices,
        exists,
    })
}

/// Writes a date field's year, month and day bitmaps of `(row, day)`
/// pairs and the table that finds them.
fn write_date_buckets(keys: &[(u32, i128)], w: &mut Writer) -> Result<DateSections> {
    let mut b = DateBucketsBuilder::default();
    for &(r, k) in keys {
        b.push(r, k as i32);
    }
    let mut table = DateTable::default();
    for (bucket, rows) in b.finish() {
        let s = w.rows(&rows)?;
        match bucket {
            Bucket::Year(y) => table.years.push((y, s)),
            Bucket::Month(m) => table.months.push((m, s)),
            Bucket::Day(d) => table.days.push((d, s)),
        }
    }
    let exists: Vec<u32> = keys.iter().map(|k| k.0).collect();
    Ok(DateSections {
        table: w.bytes(&table.encode())?,
        exists: w.rows(&exists)?,
    })
}

fn too_wide(plan: &Plan) -> IndexError {
    IndexError::Invalid(format!(
        "column `{}`: a value does not fit in 64 bits at the column's scale",
        plan.source
    ))
}

/// Reads `plans`' columns of `table` (`rows` rows) and writes their fields;
/// `file_rows` as in [`Keys`] (the order rows are numbered in, when not
/// the files' order).
fn index_table(
    table: &Table,
    plans: &[Plan],
    zone: &Zone,
    w: &mut Writer,
    rows: u32,
    file_rows: Option<&[u32]>,
) -> Result<Vec<Field>> {
    if plans.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = plans
        .iter()
        .map(|p| {
            table
                .columns
                .iter()
                .find(|c| c.source == p.source)
                .map(|c| c.name.as_str())
                .unwrap_or(p.name.as_str())
        })
        .collect();
    let batches: Vec<Vec<Norm>> = read_table(table, &names, |b| {
        plans
            .iter()
            .enumerate()
            .map(|(i, p)| normalize(b, i, p.conv, zone))
            .collect()
    })?;
    let total: usize = batches.iter().map(|b| b.first().map_or(0, norm_len)).sum();
    if total != rows as usize {
        return Err(IndexError::Invalid(format!(
            "{}: row count changed while reading",
            table.location.display()
        )));
    }
    let mut scratch = FieldScratch::default();
    let take = file_rows.map(|f| UInt32Array::from(f.to_vec()));
    plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let cols: Vec<&Norm> = batches.iter().map(|b| &b[i]).collect();
            match &take {
                None => write_field(p, &cols, w, &mut scratch),
                Some(take) => {
                    let gathered = gather(&cols, take)?;
                    write_field(p, &[&gathered], w, &mut scratch)
                }
            }
        })
        .collect()
}

/// The values of `cols` (one column, batch after batch) at the positions
/// `take`, in that order: a column in row order when rows are not the
/// files' order.
fn gather(cols: &[&Norm], take: &UInt32Array) -> Result<Norm> {
    fn arrow<A: Array + Clone + 'static>(arrays: Vec<&A>, take: &UInt32Array) -> Result<A> {
        let dyns: Vec<&dyn Array> = arrays.iter().map(|a| *a as &dyn Array).collect();
        let all = arrow_select::concat::concat(&dyns)
            .and_then(|a| arrow_select::take::take(&a, take, None))
            .map_err(|e| IndexError::Invalid(format!("reordering a column: {e}")))?;
        all.as_any()
            .downcast_ref::<A>()
            .cloned()
            .ok_or_else(|| IndexError::Invalid("reordering a column changed its type".into()))
    }
    fn plain<T: Copy>(vecs: Vec<&Vec<T>>, take: &UInt32Array) -> Result<Vec<T>> {
        let all: Vec<T> = vecs.into_iter().flatten().copied().collect();
        Ok(take.values().iter().map(|&f| all[f as usize]).collect())
    }
    macro_rules! each {
        ($variant:ident, $f:ident) => {{
            let parts = cols
                .iter()
                .map(|c| match c {
                    Norm::$variant(a) => Ok(a),
                    _ => Err(IndexError::Invalid(
                        "a column changed type between batches".into(),
                    )),
                })
                .collect::<Result<Vec<_>>>()?;
            Norm::$variant($f(parts, take)?)
        }};
    }
    Ok(match cols.first() {
        None => return Err(IndexError::Invalid("reordering an empty column".into())),
        Some(Norm::Str(_)) => each!(Str, arrow),
        Some(Norm::Int(_)) => each!(Int, arrow),
        Some(Norm::Bool(_)) => each!(Bool, arrow),
        Some(Norm::List(_)) => each!(List, arrow),
        Some(Norm::Dec(_)) => each!(Dec, plain),
        Some(Norm::Float(_)) => each!(Float, plain),
        Some(Norm::Days(_)) => each!(Days, plain),
    })
}

/// Writes a keyed table's fields, then its id section from [`read_keys`].
fn write_keyed_table(
    table: &Table,
    plans: &[Plan],
    zone: &Zone,
    w: &mut Writer,
    keys: &Keys,
) -> Result<(Vec<Field>, IdsMeta)> {
    let count = keys.count;
    let fields = index_table(table, plans, zone, w, count, keys.file_rows.as_deref())?;
    let ids = IdsMeta {
        kind: keys.kind,
        values: w.bytes(&keys.values)?,
        count,
    };
    Ok((fields, ids))
}

fn norm_len(n: &Norm) -> usize {
    match n {
        Norm::Str(a) => a.len(),
        Norm::Int(a) => a.len(),
        Norm::Bool(a) => a.len(),
        Norm::List(a) => a.len(),
        Norm::Dec(v) => v.len(),
        Norm::Float(v) => v.len(),
        Norm::Days(v) => v.len(),
    }
}

/// Writes the export columns (SPEC §5) as text, one section each.
fn write_stored(
    table: &Table,
    zone: &Zone,
    w: &mut Writer,
    keys: &Keys,
) -> Result<Vec<StoredColumn>> {
    let rows = keys.count;
    let mut out = Vec::new();
    for name in STORED_COLUMNS {
        let Some(c) = table.column(name) else {
            continue;
        };
        let class = classify(&c.data_type);
        let texts: Vec<Vec<String>> = read_table(table, &[name], |b| {
            let col = col(b, 0);
            let n = b.batch.num_rows();
            Ok(match class {
                ValueClass::Str => {
                    let a = col.utf8()?;
                    (0..n)
                        .map(|i| {
                            if a.is_null(i) {
                                String::new()
                            } else {
                                a.value(i).to_string()
                            }
                        })
                        .collect()
                }
                ValueClass::Int => {
                    let a = col.int64()?;
                    (0..n)
                        .map(|i| {
                            if a.is_null(i) {
                                String::new()
                            } else {
                                a.value(i).to_string()
                            }
                        })
                        .collect()
                }
                ValueClass::Timestamp => col
                    .instants_ns()?
                    .into_iter()
                    .map(|v| v.map_or(String::new(), |ns| date_of(zone.local_day(ns)).to_string()))
                    .collect(),
                ValueClass::Date => col
                    .days()?
                    .into_iter()
                    .map(|v| v.map_or(String::new(), |d| date_of(d).to_string()))
                    .collect(),
                _ => (0..n)
                    .map(|i| {
                        arrow_cast::display::array_value_to_string(col.array, i).unwrap_or_default()
                    })
                    .collect(),
            })
        })?;
        let mut texts: Vec<String> = texts.into_iter().flatten().collect();
        if texts.len() != rows as usize {
            return Err(IndexError::Invalid(format!(
                "{}: row count changed while reading",
                table.location.display()
            )));
        }
        if let Some(f) = &keys.file_rows {
            texts = f
                .iter()
                .map(|&f| std::mem::take(&mut texts[f as usize]))
                .collect();
        }
        let offsets = crate::stored::encode(&texts)
            .map_err(|e| IndexError::Invalid(format!("compressing stored column {name}: {e}")))?;
        out.push(StoredColumn {
            name: name.to_string(),
            section: w.bytes(&offsets)?,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Orders and lines

#[derive(Clone, Copy)]
struct OrderRec {
    cust: u32,
    key: u32,
    day: i32,
    /// Why the order cannot hold lines (an index into [`ORDER_FLAWS`]; 0 =
    /// none); it sits in what would be padding.
    flaw: u8,
    ns: i64,
    attrs: [u32; 4],
}

/// Why an order cannot hold lines, by [`OrderRec::flaw`].
const ORDER_FLAWS: [Option<&str>; 3] = [None, Some(UNKNOWN_CUSTOMER), Some(NULL_ORDERED_AT)];

#[derive(Clone, Copy)]
/// One kept line, 20 bytes: at 10M customers the build holds 170M of them.
#[repr(C, packed(4))]
struct LineRec {
    order: u32,
    product: u32,
    cents: i64,
    qty: i32,
}

/// Skipped lines by reason, with the first example of each.
#[derive(Default)]
struct Skips {
    counts: BTreeMap<&'static str, u64>,
    first: BTreeMap<&'static str, String>,
    null_totals: u64,
    null_quantities: u64,
}

impl Skips {
    fn skip(
        &mut self,
        reason: &'static str,
        batch: &Batch<'_>,
        row: usize,
        column: usize,
        value: String,
    ) {
        *self.counts.entry(reason).or_default() += 1;
        self.first.entry(reason).or_insert_with(|| {
            format!(
                "{}: column `{}`, row {}: {reason} (value {value})",
                batch.file.display(),
                batch.source(column),
                batch.first_row + row as u64
            )
        });
    }
    fn merge(&mut self, other: Skips) {
        for (k, v) in other.counts {
            *self.counts.entry(k).or_default() += v;
        }
        for (k, v) in other.first {
            self.first.entry(k).or_insert(v);
        }
        self.null_totals += other.null_totals;
        self.null_quantities += other.null_quantities;
    }
}

const UNKNOWN_ORDER: &str = "unknown order_id";
const UNKNOWN_CUSTOMER: &str = "unknown customer_id";
const UNKNOWN_PRODUCT: &str = "unknown product_id";
const NULL_ORDERED_AT: &str = "null ordered_at";

/// Order attributes present in a table: (attr index, column name, conv).
fn order_attr_columns(table: &Table) -> Result<Vec<(usize, &'static str, Conv)>> {
    let mut out = Vec::new();
    for (a, name) in ORDER_ATTR_COLUMNS.iter().enumerate() {
        if let Some(c) = table.column(name) {
            out.push((a, *name, categorical_conv(table, c)?));
        }
    }
    Ok(out)
}

fn code_attr(dict: &mut Dict, norm: &Norm, i: usize) -> u32 {
    match norm {
        Norm::Str(a) if !a.is_null(i) => dict.code_str(a.value(i)),
        Norm::Int(a) if !a.is_null(i) => dict.code_int(a.value(i)),
        _ => u32::MAX,
    }
}

struct Purchases {
    orders: Vec<OrderRec>,
    lines: Vec<LineRec>,
    attr_dicts: [Dict; 4],
    skips: Skips,
}

/// What reading orders and lines looks ids and instants up in.
#[derive(Clone, Copy)]
struct Lookups<'a> {
    customers: &'a IdMap,
    cust_kind: IdKind,
    products: &'a IdMap,
    prod_kind: IdKind,
    zone: &'a Zone,
}

fn read_normalized(orders_t: &Table, lines_t: &Table, look: Lookups<'_>) -> Result<Purchases> {
    let order_kind = id_kind(orders_t, "order_id")?;
    let attrs = order_attr_columns(orders_t)?;
    let mut names = vec!["order_id", "customer_id", "ordered_at"];
    names.extend(attrs.iter().map(|a| a.1));
    // Each batch becomes order records right away, its order attributes
    // coded by a dictionary of its own (a few values), so what is held
    // until the orders are numbered is 48 bytes an order, not the columns.
    struct OrderBatch {
        file: PathBuf,
        first_row: u64,
        id_column: String,
        ids: IdCol,
        recs: Vec<OrderRec>,
        dicts: [Dict; 4],
    }
    let batches = read_table(orders_t, &names, |b| {
        let ids = IdCol::read(b, 0, order_kind, "order_id")?;
        let cust = IdCol::read(b, 1, look.cust_kind, "customers.customer_id")?;
        let ns = col(b, 2).instants_ns()?;
        let norms = attrs
            .iter()
            .enumerate()
            .map(|(k, a)| normalize(b, 3 + k, a.2, look.zone))
            .collect::<Result<Vec<_>>>()?;
        let mut dicts: [Dict; 4] = Default::default();
        let recs = (0..ids.len())
            .map(|i| {
                let mut a4 = [u32::MAX; 4];
                for (k, a) in attrs.iter().enumerate() {
                    a4[a.0] = code_attr(&mut dicts[a.0], &norms[k], i);
                }
                let cust = look.customers.get(&cust, i).unwrap_or(u32::MAX);
                // Orders that cannot hold lines: unknown customer or null instant.
                let flaw = if cust == u32::MAX {
                    1
                } else if ns[i].is_none() {
                    2
                } else {
                    0
                };
                OrderRec {
                    cust,
                    key: 0,
                    day: ns[i].map_or(0, |t| look.zone.local_day(t)),
                    flaw,
                    ns: ns[i].unwrap_or(0),
                    attrs: a4,
                }
            })
            .collect();
        Ok(OrderBatch {
            file: b.file.to_path_buf(),
            first_row: b.first_row,
            id_column: b.sources[0].to_string(),
            ids,
            recs,
            dicts,
        })
    })?;
    let mut order_map = IdMap::for_ids(order_kind, orders_t.rows, batches.iter().map(|b| &b.ids));
    let mut orders: Vec<OrderRec> = Vec::with_capacity(orders_t.rows as usize);
    let mut attr_dicts: [Dict; 4] = Default::default();
    for (n, batch) in batches.into_iter().enumerate() {
        let ids = &batch.ids;
        // The batch's attribute codes, as codes of the global dictionaries.
        let to_global: Vec<Vec<u32>> = batch
            .dicts
            .iter()
            .zip(attr_dicts.iter_mut())
            .map(|(local, global)| {
                local
                    .values
                    .iter()
                    .map(|v| match v {
                        Value::Str(s) => global.code_str(s),
                        Value::Int(x) => global.code_int(*x),
                        Value::Bool(b) => global.code_bool(*b),
                    })
                    .collect()
            })
            .collect();
        for (i, mut rec) in batch.recs.into_iter().enumerate() {
            if ids.is_null(i) || !order_map.insert(ids, i, orders.len() as u32) {
                return Err(IndexError::Ingest(IngestError::BadValue {
                    path: batch.file.clone(),
                    column: batch.id_column.clone(),
                    row: batch.first_row + i as u64,
                    value: ids.show(i),
                    message: if ids.is_null(i) {
                        "order_id is null"
                    } else {
                        "duplicate order_id"
                    }
                    .into(),
                }));
            }
            for (a, code) in rec.attrs.iter_mut().enumerate() {
                if *code != u32::MAX {
                    *code = to_global[a][*code as usize];
                }
            }
            rec.key = orders.len() as u32;
            orders.push(rec);
        }
        if n % 256 == 255 {
            release_free_memory();
        }
    }
    release_free_memory();
    // Each batch appends its lines as soon as it is read, so the batches'
    // lines are never all held twice; the order of batches is restored by
    // the sort in `write_index`, skips are merged in file order.
    let lines = Mutex::new(Vec::with_capacity(lines_t.rows as usize));
    let skips_per_batch = read_table(
        lines_t,
        &["order_id", "product_id", "quantity", "line_total"],
        |b| {
            let ids = IdCol::read(b, 0, order_kind, "orders.order_id")?;
            let prods = IdCol::read(b, 1, look.prod_kind, "products.product_id")?;
            let qty = col(b, 2).int64()?;
            let cents = col(b, 3).cents()?;
            let mut skips = Skips::default();
            let mut out = Vec::with_capacity(ids.len());
            for (i, &line_cents) in cents.iter().enumerate() {
                let Some(o) = order_map.get(&ids, i) else {
                    skips.skip(UNKNOWN_ORDER, b, i, 0, ids.show(i));
                    continue;
                };
                if let Some(flaw) = ORDER_FLAWS[orders[o as usize].flaw as usize] {
                    skips.skip(flaw, b, i, 0, ids.show(i));
                    continue;
                }
                let Some(p) = look.products.get(&prods, i) else {
                    skips.skip(UNKNOWN_PRODUCT, b, i, 1, prods.show(i));
                    continue;
                };
                if qty.is_null(i) {
                    skips.null_quantities += 1;
                }
                if line_cents.is_none() {
                    skips.null_totals += 1;
                }
                out.push(LineRec {
                    order: o,
                    product: p,
                    qty: line_qty(b, 2, &qty, i)?,
                    cents: line_cents.unwrap_or(0),
                });
            }
            lines.lock().expect("lines lock").extend_from_slice(&out);
            Ok(skips)
        },
    )?;
    drop(order_map);
    let mut skips = Skips::default();
    for s in skips_per_batch {
        skips.merge(s);
    }
    let lines = lines.into_inner().expect("lines lock");
    Ok(Purchases {
        orders,
        lines,
        attr_dicts,
        skips,
    })
}

/// The quantity of line `i` (null counts as 0); one outside i32 is an error
/// naming the file, column and row, as no real line holds such a quantity.
fn line_qty(b: &Batch<'_>, col_idx: usize, qty: &Int64Array, i: usize) -> Result<i32> {
    if qty.is_null(i) {
        return Ok(0);
    }
    let q = qty.value(i);
    i32::try_from(q).map_err(|_| {
        IndexError::Ingest(IngestError::BadValue {
            path: b.file.to_path_buf(),
            column: b.sources[col_idx].to_string(),
            row: b.first_row + i as u64,
            value: q.to_string(),
            message: "quantity out of range (more than 2,147,483,647 units on one line)".into(),
        })
    })
}

/// Returns freed heap memory to the system (glibc keeps it in its arenas
/// otherwise, and the build's peak RSS would count it twice). Other
/// allocators (the command's mimalloc) return memory themselves.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn read_denormalized(lines_t: &Table, look: Lookups<'_>) -> Result<Purchases> {
    lines_t.require("customer_id")?;
    lines_t.require("ordered_at")?;
    let order_kind = id_kind(lines_t, "order_id")?;
    let attrs = order_attr_columns(lines_t)?;
    let mut names = vec![
        "order_id",
        "product_id",
        "quantity",
        "line_total",
        "customer_id",
        "ordered_at",
    ];
    names.extend(attrs.iter().map(|a| a.1));
    struct Part {
        ids: IdCol,
        cust: Vec<u32>,
        ns: Vec<Option<i64>>,
        days: Vec<i32>,
        prod: Vec<u32>,
        qty: Vec<i32>,
        cents: Vec<Option<i64>>,
        norms: Vec<Norm>,
        keep: Vec<bool>,
        skips: Skips,
    }
    let parts = read_table(lines_t, &names, |b| {
        let ids = IdCol::read(b, 0, order_kind, "order_id")?;
        let prods = IdCol::read(b, 1, look.prod_kind, "products.product_id")?;
        let qty = col(b, 2).int64()?;
        let cents = col(b, 3).cents()?;
        let custs = IdCol::read(b, 4, look.cust_kind, "customers.customer_id")?;
        let ns = col(b, 5).instants_ns()?;
        let norms = attrs
            .iter()
            .enumerate()
            .map(|(k, a)| normalize(b, 6 + k, a.2, look.zone))
            .collect::<Result<Vec<_>>>()?;
        let n = ids.len();
        let mut skips = Skips::default();
        let mut keep = vec![false; n];
        let mut cust = vec![u32::MAX; n];
        let mut prod = vec![u32::MAX; n];
        for i in 0..n {
            if ids.is_null(i) {
                skips.skip(UNKNOWN_ORDER, b, i, 0, ids.show(i));
                continue;
            }
            let Some(c) = look.customers.get(&custs, i) else {
                skips.skip(UNKNOWN_CUSTOMER, b, i, 4, custs.show(i));
                continue;
            };
            if ns[i].is_none() {
                skips.skip(NULL_ORDERED_AT, b, i, 5, "null".into());
                continue;
            }
            let Some(p) = look.products.get(&prods, i) else {
                skips.skip(UNKNOWN_PRODUCT, b, i, 1, prods.show(i));
                continue;
            };
            if qty.is_null(i) {
                skips.null_quantities += 1;
            }
            if cents[i].is_none() {
                skips.null_totals += 1;
            }
            keep[i] = true;
            cust[i] = c;
            prod[i] = p;
        }
        let days = ns
            .iter()
            .map(|v| v.map_or(0, |t| look.zone.local_day(t)))
            .collect();
        let qty = (0..n)
            .map(|i| {
                if keep[i] {
                    line_qty(b, 2, &qty, i)
                } else {
                    Ok(0)
                }
            })
            .collect::<Result<Vec<i32>>>()?;
        Ok(Part {
            ids,
            cust,
            ns,
            days,
            prod,
            qty,
            cents,
            norms,
            keep,
            skips,
        })
    })?;
    let mut keys = IdMap::for_ids(order_kind, lines_t.rows / 2, parts.iter().map(|p| &p.ids));
    let mut groups: HashMap<(u32, u32, i64, [u32; 4]), u32> = HashMap::new();
    let mut orders = Vec::new();
    let mut lines = Vec::new();
    let mut attr_dicts: [Dict; 4] = Default::default();
    let mut skips = Skips::default();
    for part in parts {
        for i in 0..part.ids.len() {
            if !part.keep[i] {
                continue;
            }
            let key = keys.get_or_insert(&part.ids, i);
            let mut a4 = [u32::MAX; 4];
            for (k, a) in attrs.iter().enumerate() {
                a4[a.0] = code_attr(&mut attr_dicts[a.0], &part.norms[k], i);
            }
            let ns = part.ns[i].unwrap_or(0);
            let next = orders.len() as u32;
            let o = *groups.entry((part.cust[i], key, ns, a4)).or_insert(next);
            if o == next {
                orders.push(OrderRec {
                    cust: part.cust[i],
                    key,
                    day: part.days[i],
                    flaw: 0,
                    ns,
                    attrs: a4,
                });
            }
            lines.push(LineRec {
                order: o,
                product: part.prod[i],
                qty: part.qty[i],
                cents: part.cents[i].unwrap_or(0),
            });
        }
        skips.merge(part.skips);
    }
    Ok(Purchases {
        orders,
        lines,
        attr_dicts,
        skips,
    })
}

// ---------------------------------------------------------------------------
// The whole build

/// What every chunk of the purchase pass needs to know of the whole index.
struct PurchaseShape<'a> {
    n_products: usize,
    first_day: i32,
    /// Each day's month (from `first_day`), counted from the first day's
    /// month.
    month_slots: &'a [u32],
    /// Months from the first day's month to the last day's.
    n_months: u64,
    /// Sorted value id of each order attribute's dictionary code (one code
    /// per value).
    attr_remaps: &'a [Vec<u32>],
}

/// Customers per product-month of one chunk, as groups of chunk-local
/// rows (ascending) keyed by `product × n_months + month slot`
/// (ascending). Gathered as one list of keys sorted once per chunk, so
/// the pass over the lines appends to one vector; 2 bytes a row.
#[derive(Default)]
struct ProductMonths {
    /// The chunk's first row.
    first_row: u32,
    /// (key, end of the group's rows in `rows`), by key.
    groups: Vec<(u64, u32)>,
    rows: Vec<u16>,
}

impl ProductMonths {
    /// From keys `(product × n_months + month slot) << 16 | local row`,
    /// in any order with repeats.
    fn from_keys(first_row: u32, mut keys: Vec<u64>) -> Self {
        keys.sort_unstable();
        keys.dedup();
        let mut pm = ProductMonths {
            first_row,
            groups: Vec::new(),
            rows: Vec::with_capacity(keys.len()),
        };
        for k in keys {
            let slot = k >> 16;
            if pm.groups.last().is_none_or(|g| g.0 != slot) {
                // Close the previous group where the new one starts.
                if let Some(g) = pm.groups.last_mut() {
                    g.1 = pm.rows.len() as u32;
                }
                pm.groups.push((slot, 0));
            }
            // The low 16 bits: the local row (a chunk has CHUNK_ROWS = 2^16).
            pm.rows.push(k as u16);
        }
        if let Some(g) = pm.groups.last_mut() {
            g.1 = pm.rows.len() as u32;
        }
        pm
    }

    /// The rows (global, ascending) of group `g`.
    fn group_rows(&self, g: usize) -> impl Iterator<Item = u32> + '_ {
        let start = if g == 0 {
            0
        } else {
            self.groups[g - 1].1 as usize
        };
        self.rows[start..self.groups[g].1 as usize]
            .iter()
            .map(|&r| self.first_row + r as u32)
    }
}

/// Customers per product, day and order attribute value,
/// of one chunk (as ascending row lists, `T = Vec<u32>`) or, merged in
/// chunk order, of all of them (`T = Bitmap`).
struct PurchaseSets<T> {
    prod_all: Vec<T>,
    any_day: Vec<T>,
    any_all: T,
    attr_rows: Vec<Vec<T>>,
    attr_nulls: Vec<T>,
}

impl<T: Default + Clone> PurchaseSets<T> {
    fn new(shape: &PurchaseShape) -> Self {
        PurchaseSets {
            prod_all: vec![T::default(); shape.n_products],
            any_day: vec![T::default(); shape.month_slots.len()],
            any_all: T::default(),
            attr_rows: shape
                .attr_remaps
                .iter()
                .map(|r| vec![T::default(); r.len()])
                .collect(),
            attr_nulls: vec![T::default(); 4],
        }
    }
}

/// Appends `row` to an ascending list unless it is already the last.
#[inline]
fn push_row(v: &mut Vec<u32>, row: u32) {
    if v.last() != Some(&row) {
        v.push(row);
    }
}

impl PurchaseSets<Vec<u32>> {
    /// The lists as bitmaps (roaring's `try_push` would find a bitmap
    /// container's maximum by a scan on every row; building from a sorted
    /// list does not).
    fn into_bitmaps(self) -> PurchaseSets<Bitmap> {
        let one = |rows: Vec<u32>| Bitmap::from_sorted_iter(rows).expect("ascending rows");
        let all = |lists: Vec<Vec<u32>>| lists.into_iter().map(one).collect::<Vec<_>>();
        PurchaseSets {
            prod_all: all(self.prod_all),
            any_day: all(self.any_day),
            any_all: one(self.any_all),
            attr_rows: self.attr_rows.into_iter().map(all).collect(),
            attr_nulls: all(self.attr_nulls),
        }
    }
}

impl PurchaseSets<Bitmap> {
    /// Adds a later chunk's bitmaps. Chunks hold disjoint rows (one roaring
    /// container each), so a union moves containers and copies no rows.
    fn merge(&mut self, later: PurchaseSets<Bitmap>) {
        let union = |into: &mut Vec<Bitmap>, from: Vec<Bitmap>| {
            for (a, b) in into.iter_mut().zip(from) {
                if !b.is_empty() {
                    *a |= b;
                }
            }
        };
        union(&mut self.prod_all, later.prod_all);
        union(&mut self.any_day, later.any_day);
        union(&mut self.attr_nulls, later.attr_nulls);
        for (into, from) in self.attr_rows.iter_mut().zip(later.attr_rows) {
            union(into, from);
        }
        self.any_all |= later.any_all;
    }
}

/// One chunk's share of the purchase pass.
struct ChunkPart {
    /// The encoded line store.
    bytes: Vec<u8>,
    kept_orders: u64,
    orders_without_lines: u64,
    bitmaps: PurchaseSets<Bitmap>,
    product_months: ProductMonths,
}

/// Builds the line store and the purchase bitmaps of the customers `rows`
/// from their `orders` (sorted, the first being order number `order_base`)
/// and those orders' `lines` (sorted by order).
fn chunk_part(
    rows: std::ops::Range<u32>,
    orders: &[OrderRec],
    order_base: usize,
    lines: &[LineRec],
    shape: &PurchaseShape,
) -> Result<ChunkPart> {
    let mut b = PurchaseSets::<Vec<u32>>::new(shape);
    let first_row = rows.start;
    let mut month_keys: Vec<u64> = Vec::with_capacity(lines.len());
    // Rows come in ascending order; `push_row` keeps one of a customer's
    // several orders.
    let mut cw = ChunkWriter::default();
    cw.cust_start.reserve(rows.len() + 1);
    for col in [&mut cw.order_day, &mut cw.order_ns, &mut cw.order_key] {
        col.reserve(orders.len());
    }
    for col in &mut cw.order_attr {
        col.reserve(orders.len());
    }
    cw.order_line_start.reserve(orders.len() + 1);
    for col in [&mut cw.line_product, &mut cw.line_qty, &mut cw.line_cents] {
        col.reserve(lines.len());
    }
    let (mut kept_orders, mut orders_without_lines) = (0u64, 0u64);
    let mut li = 0usize; // next line
    let mut oi = 0usize; // next order
    for row in rows {
        cw.cust_start.push(cw.order_day.len() as i64);
        while oi < orders.len() && orders[oi].cust == row {
            let o = &orders[oi];
            let start = li;
            while li < lines.len() && lines[li].order as usize == order_base + oi {
                li += 1;
            }
            if li > start {
                kept_orders += 1;
                cw.order_line_start.push(cw.line_product.len() as i64);
                cw.order_day.push(o.day as i64);
                cw.order_ns.push(o.ns);
                cw.order_key.push(o.key as i64);
                let day_i = (o.day - shape.first_day) as usize;
                push_row(&mut b.any_day[day_i], row);
                push_row(&mut b.any_all, row);
                for a in 0..4 {
                    let code = o.attrs[a];
                    if code == u32::MAX {
                        cw.order_attr[a].push(NULL_VALUE);
                        push_row(&mut b.attr_nulls[a], row);
                    } else {
                        let v = shape.attr_remaps[a][code as usize];
                        cw.order_attr[a].push(v as i64);
                        push_row(&mut b.attr_rows[a][v as usize], row);
                    }
                }
                let month_key = |product: u32| {
                    ((product as u64 * shape.n_months + shape.month_slots[day_i] as u64) << 16)
                        | (row - first_row) as u64
                };
                for l in &lines[start..li] {
                    cw.line_product.push(l.product as i64);
                    cw.line_qty.push(l.qty as i64);
                    cw.line_cents.push(l.cents);
                    push_row(&mut b.prod_all[l.product as usize], row);
                    month_keys.push(month_key(l.product));
                }
            } else {
                orders_without_lines += 1;
            }
            oi += 1;
        }
    }
    cw.cust_start.push(cw.order_day.len() as i64);
    cw.order_line_start.push(cw.line_product.len() as i64);
    Ok(ChunkPart {
        bytes: cw.encode().map_err(IndexError::Invalid)?,
        kept_orders,
        orders_without_lines,
        bitmaps: b.into_bitmaps(),
        product_months: ProductMonths::from_keys(first_row, month_keys),
    })
}

/// The orders' numbers sorted by (customer, first instant of the order id,
/// key, instant, attributes): a counting sort by customer (unknown
/// customers, `u32::MAX`, last), then each customer's few orders sorted by
/// the rest, blocks of customers in parallel. Keys are unique, so this is
/// the order a full sort gives, without its ~26 rounds of random reads of
/// `orders` per order.
fn order_permutation(orders: &[OrderRec], first_ns: &[i64], n_customers: u32) -> Vec<u32> {
    let n = n_customers as usize;
    let bucket = |c: u32| if c == u32::MAX { n } else { c as usize };
    // starts[b]..starts[b + 1]: bucket b's place in the permutation.
    let mut starts = vec![0u32; n + 2];
    for o in orders {
        starts[bucket(o.cust) + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut perm = vec![0u32; orders.len()];
    let mut next = starts.clone();
    for (i, o) in orders.iter().enumerate() {
        let b = bucket(o.cust);
        perm[next[b] as usize] = i as u32;
        next[b] += 1;
    }
    drop(next);
    let rest = |o: u32| {
        let r = &orders[o as usize];
        (first_ns[r.key as usize], r.key, r.ns, r.attrs)
    };
    // Blocks of 4,096 buckets own disjoint ranges of the permutation.
    const BLOCK: usize = 4096;
    let mut blocks: Vec<(usize, &mut [u32])> = Vec::new();
    let mut tail: &mut [u32] = &mut perm;
    for first in (0..=n).step_by(BLOCK) {
        let last = (first + BLOCK).min(n + 1);
        let len = (starts[last] - starts[first]) as usize;
        let (block, t) = std::mem::take(&mut tail).split_at_mut(len);
        blocks.push((first, block));
        tail = t;
    }
    blocks.into_par_iter().for_each(|(first, block)| {
        let base = starts[first];
        let last = (first + BLOCK).min(n + 1);
        for b in first..last {
            let group = &mut block[(starts[b] - base) as usize..(starts[b + 1] - base) as usize];
            if group.len() > 1 {
                group.sort_unstable_by_key(|&o| rest(o));
            }
        }
    });
    perm
}

/// Product-months whose bitmaps are built in parallel before being
/// written (about 1 MB of bitmaps at a time).
const PRODUCT_MONTH_BATCH: usize = 4096;

/// Writes each product-month's customers from every chunk (the chunks'
/// groups merged by key, then chunk; `batch` product-months' bitmaps
/// built in parallel at a time) and returns the product-month index:
/// per product the number of entries before it, one more such count, then
/// the `(month, section)` entries by product and month.
fn write_product_months(
    chunks: &[ProductMonths],
    n_products: u64,
    n_months: u64,
    first_month: i32,
    w: &mut Writer,
    batch: usize,
) -> Result<Vec<u8>> {
    let mut month_index: Vec<u8> = Vec::new();
    let mut entries: Vec<u8> = Vec::new();
    let mut count = 0u32;
    let mut next_product = 0u64;
    // (key, chunk, group) of each chunk's next group.
    let mut heads: BinaryHeap<Reverse<(u64, usize, usize)>> = chunks
        .iter()
        .enumerate()
        .filter(|(_, pm)| !pm.groups.is_empty())
        .map(|(c, pm)| Reverse((pm.groups[0].0, c, 0)))
        .collect();
    // The merge is serial and cheap; building and serializing the bitmaps
    // (most of this step's time) runs in parallel a batch of keys at a
    // time, and the batch is written in key order.
    let mut keys: Vec<u64> = Vec::with_capacity(batch);
    // Each key's (chunk, group) parts, from `ends[k - 1]` to `ends[k]`.
    let mut parts: Vec<(usize, usize)> = Vec::new();
    let mut ends: Vec<usize> = Vec::with_capacity(batch);
    loop {
        let key = heads.peek().map(|&Reverse((key, _, _))| key);
        if key.is_none() || keys.len() == batch {
            let sections: Vec<Result<Vec<u8>>> = (0..keys.len())
                .into_par_iter()
                .map(|k| {
                    let from = if k == 0 { 0 } else { ends[k - 1] };
                    let rows = Bitmap::from_sorted_iter(
                        parts[from..ends[k]]
                            .iter()
                            .flat_map(|&(c, g)| chunks[c].group_rows(g)),
                    )
                    .map_err(|_| {
                        IndexError::Invalid("internal: product-month rows out of order".into())
                    })?;
                    Ok(segdex_bitmap::to_portable_bytes(&rows))
                })
                .collect();
            for (&key, section) in keys.iter().zip(sections) {
                let (product, slot) = (key / n_months, key % n_months);
                while next_product <= product {
                    month_index.extend_from_slice(&count.to_le_bytes());
                    next_product += 1;
                }
                let section = w.serialized_bitmap(&section?)?;
                let month = first_month + slot as i32;
                entries.extend_from_slice(&month.to_le_bytes());
                entries.extend_from_slice(&section.to_le_bytes());
                count += 1;
            }
            keys.clear();
            parts.clear();
            ends.clear();
        }
        let Some(key) = key else { break };
        while let Some(&Reverse((k, c, g))) = heads.peek()
            && k == key
        {
            heads.pop();
            parts.push((c, g));
            if let Some(next) = chunks[c].groups.get(g + 1) {
                heads.push(Reverse((next.0, c, g + 1)));
            }
        }
        keys.push(key);
        ends.push(parts.len());
    }
    while next_product < n_products {
        month_index.extend_from_slice(&count.to_le_bytes());
        next_product += 1;
    }
    month_index.extend_from_slice(&count.to_le_bytes());
    month_index.extend_from_slice(&entries);
    Ok(month_index)
}

fn write_index(
    sources: &Sources,
    dir: &Path,
    zone: &Zone,
    opts: &BuildOptions,
    progress: &(dyn Fn(&str) + Sync),
    started: Instant,
) -> Result<BuildSummary> {
    let data_path = dir.join("index.seg");
    let mut w = Writer {
        w: SectionWriter::create(&data_path)?,
        bitmaps: 0,
        empty: None,
    };
    let mut summary = BuildSummary::default();
    for t in [
        Some(&sources.customers),
        sources.orders.as_ref(),
        Some(&sources.order_lines),
        Some(&sources.products),
    ]
    .into_iter()
    .flatten()
    {
        summary.rows_read.insert(t.kind.name().to_string(), t.rows);
    }

    // Products.
    progress("reading products");
    let prod_kind = id_kind(&sources.products, "product_id")?;
    let product_keys = read_keys(&sources.products, "product_id", prod_kind)?;
    let (pplans, _pstored, product_unindexed) = product_plans(&sources.products)?;
    let (product_fields, product_ids) =
        write_keyed_table(&sources.products, &pplans, zone, &mut w, &product_keys)?;
    let (products, n_products) = (product_keys.map, product_keys.count);

    // Customers.
    progress("reading customers");
    let cust_kind = id_kind(&sources.customers, "customer_id")?;
    let customer_keys = read_keys(&sources.customers, "customer_id", cust_kind)?;
    let (customers, n_customers) = (&customer_keys.map, customer_keys.count);
    let (cplans, stored_only, customer_unindexed) = customer_plans(&sources.customers)?;

    // Customer fields are written while orders and lines are read: the
    // reading needs only the id maps, and only the fields write sections,
    // so the index is the same as when one follows the other.
    progress("indexing customers, reading orders and lines");
    let (customer_part, p) = rayon::join(
        || -> Result<_> {
            let keys = &customer_keys;
            let (fields, ids) = write_keyed_table(&sources.customers, &cplans, zone, &mut w, keys)?;
            let stored = write_stored(&sources.customers, zone, &mut w, keys)?;
            Ok((fields, ids, stored))
        },
        || {
            let look = Lookups {
                customers,
                cust_kind,
                products: &products,
                prod_kind,
                zone,
            };
            match &sources.orders {
                Some(orders_t) => read_normalized(orders_t, &sources.order_lines, look),
                None => read_denormalized(&sources.order_lines, look),
            }
        },
    );
    // A customer error is reported first, as when customers came first.
    let (customer_fields, customer_ids, stored) = customer_part?;
    let p = p?;
    drop((customer_keys, products));
    if opts.strict && !p.skips.counts.is_empty() {
        let first: Vec<&String> = p.skips.first.values().collect();
        return Err(IndexError::Invalid(format!(
            "--strict: {} (and {} such lines in all)",
            first[0],
            p.skips.counts.values().sum::<u64>()
        )));
    }
    summary.lines_skipped = p
        .skips
        .counts
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    summary.null_line_totals = p.skips.null_totals;
    summary.null_quantities = p.skips.null_quantities;

    progress("sorting purchases");
    let attr_table = sources.orders.as_ref().unwrap_or(&sources.order_lines);
    let attr_present: Vec<bool> = ORDER_ATTR_COLUMNS
        .iter()
        .map(|c| attr_table.column(c).is_some())
        .collect();
    let Purchases {
        orders,
        mut lines,
        attr_dicts,
        ..
    } = p;
    // Order attribute dictionaries, sorted.
    let mut attr_values = Vec::new();
    let mut attr_remaps = Vec::new();
    for d in attr_dicts {
        let (v, r) = d.finish(false);
        attr_values.push(v);
        attr_remaps.push(r);
    }
    // Renumber orders by (customer, first instant of the order id, key,
    // instant, attributes) and sort lines by order: each customer's orders
    // and lines are contiguous, the groups of one order id adjacent, and
    // orders in time order (see `chunk`).
    let first_ns: Vec<i64> = {
        let keys = orders.iter().map(|o| o.key as usize + 1).max().unwrap_or(0);
        let mut first = vec![i64::MAX; keys];
        for o in &orders {
            let f = &mut first[o.key as usize];
            *f = (*f).min(o.ns);
        }
        first
    };
    // `perm[new]` is the file-order index of order `new`. The orders stay
    // in file order: each chunk gathers its own orders through `perm` (in
    // parallel, independent loads), which is several times faster than
    // permuting them in place (one dependent random load per order).
    let perm = order_permutation(&orders, &first_ns, n_customers);
    drop(first_ns);
    let mut new_of = vec![0u32; orders.len()];
    for (new, &old) in perm.iter().enumerate() {
        new_of[old as usize] = new as u32;
    }
    let order = |new: usize| &orders[perm[new] as usize];
    lines
        .par_iter_mut()
        .for_each(|l| l.order = new_of[l.order as usize]);
    drop(new_of);
    // The whole line as the key: lines arrive in whatever order the
    // batches finished, and the index is the same whatever that order.
    lines.par_sort_unstable_by_key(|l| (l.order, l.product, l.qty, l.cents));
    release_free_memory();

    progress("writing purchases");
    let (first_day, last_day) = lines
        .iter()
        .map(|l| order(l.order as usize).day)
        .fold((i32::MAX, i32::MIN), |(a, b), d| (a.min(d), b.max(d)));
    let first_day = if lines.is_empty() { 0 } else { first_day };
    let n_days = if lines.is_empty() {
        0
    } else {
        (last_day - first_day + 1) as usize
    };
    let first_month = month_of(first_day);
    let month_slots: Vec<u32> = (0..n_days)
        .map(|i| (month_of(first_day + i as i32) - first_month) as u32)
        .collect();
    let n_months = month_slots.last().map_or(0, |&s| s as u64 + 1);
    // Product-month keys hold the local row in 16 bits (CHUNK_ROWS = 2^16)
    // and `product × n_months + month` in the other 48.
    if (n_products as u64).saturating_mul(n_months) >= 1 << 48 {
        return Err(IndexError::Invalid(format!(
            "{n_products} products over {n_months} months of orders: too many product-months"
        )));
    }

    let shape = PurchaseShape {
        n_products: n_products as usize,
        first_day,
        month_slots: &month_slots,
        n_months,
        attr_remaps: &attr_remaps,
    };
    let mut bitmaps = PurchaseSets::<Bitmap>::new(&shape);
    // Chunks are independent: each wave of as many chunks as there are
    // threads is built in parallel, then written and merged in chunk order
    // while the next wave is built (two waves' line stores are in memory
    // at a time, not all of them).
    let n_chunks = n_customers.div_ceil(CHUNK_ROWS) as usize;
    let bounds: Vec<(usize, usize)> = (0..=n_chunks)
        .map(|c| {
            let row = (c as u32 * CHUNK_ROWS).min(n_customers);
            let oi = perm.partition_point(|&o| orders[o as usize].cust < row);
            let li = lines.partition_point(|l| (l.order as usize) < oi);
            (oi, li)
        })
        .collect();
    let mut chunk_sections = Vec::with_capacity(n_chunks);
    let mut product_months: Vec<ProductMonths> = Vec::with_capacity(n_chunks);
    let mut kept_orders = 0u64;
    let wave = rayon::current_num_threads().max(1);
    let build_wave = |first: usize| -> Result<Vec<ChunkPart>> {
        (first..(first + wave).min(n_chunks))
            .into_par_iter()
            .map(|c| {
                let rows = c as u32 * CHUNK_ROWS..((c as u32 + 1) * CHUNK_ROWS).min(n_customers);
                let (o_lo, l_lo) = bounds[c];
                let (o_hi, l_hi) = bounds[c + 1];
                let chunk_orders: Vec<OrderRec> = (o_lo..o_hi).map(|o| *order(o)).collect();
                chunk_part(rows, &chunk_orders, o_lo, &lines[l_lo..l_hi], &shape)
            })
            .collect()
    };
    let mut consume = |parts: Vec<ChunkPart>| -> Result<()> {
        for part in parts {
            chunk_sections.push(w.bytes(&part.bytes)?);
            kept_orders += part.kept_orders;
            summary.orders_without_lines += part.orders_without_lines;
            bitmaps.merge(part.bitmaps);
            product_months.push(part.product_months);
        }
        Ok(())
    };
    // A wave is written and merged while the next one is built.
    let mut pending: Option<Vec<ChunkPart>> = None;
    for first in (0..n_chunks).step_by(wave) {
        let (next, done) = rayon::join(
            || build_wave(first),
            || pending.take().map_or(Ok(()), &mut consume),
        );
        done?;
        pending = Some(next?);
    }
    if let Some(parts) = pending {
        consume(parts)?;
    }
    // Orders of unknown customers sort last (cust = u32::MAX); lines of such
    // orders were skipped, so they are orders without lines.
    summary.orders_without_lines += (bounds[n_chunks].0..orders.len())
        .filter(|&o| order(o).cust != u32::MAX)
        .count() as u64;
    let n_lines = lines.len() as u64;
    drop(lines);
    drop(perm);
    drop(orders);

    progress("writing purchase bitmaps");
    let PurchaseSets {
        prod_all,
        any_day,
        any_all,
        attr_rows,
        attr_nulls,
    } = bitmaps;
    let mut all_time_sections = Vec::with_capacity(n_products as usize * 4);
    for rows in &prod_all {
        all_time_sections.extend_from_slice(&w.bitmap(rows)?.to_le_bytes());
    }
    drop(prod_all);
    let month_index = write_product_months(
        &product_months,
        n_products as u64,
        n_months,
        first_month,
        &mut w,
        PRODUCT_MONTH_BATCH,
    )?;
    drop(product_months);
    let product_all_time = w.bytes(&all_time_sections)?;
    let product_months = w.bytes(&month_index)?;
    let any_day_sections = any_day
        .iter()
        .map(|r| w.bitmap(r))
        .collect::<Result<Vec<_>>>()?;
    let mut any_month = vec![Bitmap::new(); n_months as usize];
    for (rows, &m) in any_day.iter().zip(&month_slots) {
        any_month[m as usize] |= rows;
    }
    let any_month_sections = any_month
        .iter()
        .map(|r| w.bitmap(r))
        .collect::<Result<Vec<_>>>()?;
    drop(any_month);
    let any_all_time = w.bitmap(&any_all)?;
    let mut order_attrs = Vec::new();
    for a in 0..4 {
        let value_sections = attr_rows[a]
            .iter()
            .map(|r| w.bitmap(r))
            .collect::<Result<Vec<_>>>()?;
        let int_values = attr_values[a].iter().any(|v| matches!(v, Value::Int(_)));
        order_attrs.push(Field {
            name: ORDER_ATTRS[a].to_string(),
            source: if attr_present[a] {
                ORDER_ATTR_COLUMNS[a].to_string()
            } else {
                String::new()
            },
            kind: FieldKind::Categorical,
            values: std::mem::take(&mut attr_values[a]),
            value_sections,
            null_section: w.bitmap(&attr_nulls[a])?,
            bsi: None,
            dates: None,
            month_day_sections: Vec::new(),
            int_values,
        });
    }

    summary.fields = (customer_fields.len() + product_fields.len() + order_attrs.len()) as u64;
    summary.bitmaps = w.bitmaps;
    summary.seconds = started.elapsed().as_secs_f64();
    let meta = Meta {
        timezone: zone.name().to_string(),
        customers: n_customers,
        products: n_products,
        orders: kept_orders,
        lines: n_lines,
        customer_ids,
        product_ids,
        customer_fields,
        stored_only,
        stored,
        customer_unindexed,
        product_fields,
        product_unindexed,
        purchases: PurchasesMeta {
            chunks: chunk_sections,
            product_all_time,
            product_months,
            first_day,
            any_day: any_day_sections,
            any_month: any_month_sections,
            any_all_time,
            order_attrs,
        },
        summary: summary.clone(),
    };
    let meta_json = serde_json::to_vec(&meta).map_err(|e| IndexError::Invalid(e.to_string()))?;
    let meta_section = w.bytes(&meta_json)?;
    let data_bytes = w.w.finish()?;
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        data_file: "index.seg".into(),
        data_bytes,
        meta_section,
        written_by: format!("segdex {}", env!("CARGO_PKG_VERSION")),
    };
    let mpath = dir.join("manifest.json");
    let text =
        serde_json::to_vec_pretty(&manifest).map_err(|e| IndexError::Invalid(e.to_string()))?;
    std::fs::write(&mpath, text).map_err(|e| io_err(&mpath, e))?;
    std::fs::File::open(&mpath)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(&mpath, e))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product-month sections and index are the same whatever the
    /// batch, and hold each product-month's rows from every chunk.
    #[test]
    fn product_months_are_written_alike_in_any_batch() {
        let (n_products, n_months) = (5u64, 4u64);
        // Chunk c has row r in product-month key k when (r + 3k + c) % 4 == 0,
        // for rows 0..40 and every key but those of product 2 (none).
        let key_of = |r: u64, k: u64| (k << 16) | r;
        let has = |c: u32, k: u64, r: u64| (r + 3 * k + c as u64).is_multiple_of(4);
        let chunks: Vec<ProductMonths> = (0..3u32)
            .map(|c| {
                let keys = (0..n_products * n_months)
                    .filter(|k| k / n_months != 2)
                    .flat_map(|k| (0..40u64).map(move |r| (k, r)))
                    .filter(|&(k, r)| has(c, k, r))
                    .map(|(k, r)| key_of(r, k))
                    .rev()
                    .collect();
                ProductMonths::from_keys(c * CHUNK_ROWS, keys)
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mut written = Vec::new();
        for batch in [1, 3, 4096] {
            let path = dir.path().join(format!("b{batch}"));
            let mut w = Writer {
                w: SectionWriter::create(&path).unwrap(),
                bitmaps: 0,
                empty: None,
            };
            let index =
                write_product_months(&chunks, n_products, n_months, 600, &mut w, batch).unwrap();
            assert_eq!(w.bitmaps, (n_products - 1) * n_months);
            w.w.finish().unwrap();
            written.push((index, std::fs::read(&path).unwrap(), path));
        }
        for (index, bytes, _) in &written[1..] {
            assert_eq!(index, &written[0].0);
            assert_eq!(bytes, &written[0].1);
        }
        // The entries of product 3, month slot 1: rows of every chunk.
        let (index, _, path) = &written[0];
        let word = |i: usize| u32::from_le_bytes(index[4 * i..4 * i + 4].try_into().unwrap());
        let (before, after) = (word(3), word(4));
        assert_eq!((word(2), after - before), (word(3), n_months as u32));
        let entries = 4 * (n_products as usize + 1);
        let entry = entries + 8 * (before as usize + 1);
        assert_eq!(word(entry / 4) as i32, 601);
        let file = segdex_bitmap::SectionFile::open(path).unwrap();
        let rows = file.bitmap(word(entry / 4 + 1)).unwrap();
        let k = 3 * n_months + 1;
        let want: Vec<u32> = (0..3u32)
            .flat_map(|c| {
                (0..40u32)
                    .filter(move |&r| has(c, k, r as u64))
                    .map(move |r| c * CHUNK_ROWS + r)
            })
            .collect();
        assert_eq!(rows.iter().collect::<Vec<_>>(), want);
    }
}
