//! Reading the four tables: locating them (mapping file or default names),
//! decoding every Parquet column into plain cells, and applying the mapping's
//! renames and excludes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt64Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::dec::Dec;

/// The physical family of a column, as far as the reference cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ColTy {
    Int,
    Str,
    Float,
    Decimal,
    Date,
    Timestamp,
    Bool,
    ListStr,
    Other(String),
}

impl ColTy {
    pub(crate) fn is_numeric(&self) -> bool {
        matches!(self, ColTy::Int | ColTy::Float | ColTy::Decimal)
    }
}

/// One decoded value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cell {
    Null,
    Int(i128),
    Str(String),
    /// A float (as its shortest round-trip decimal) or a decimal (exact).
    Num(Dec),
    /// A calendar date, as a day number (days since 1970-01-01).
    Day(i128),
    /// An instant, in nanoseconds since 1970-01-01T00:00:00Z.
    Ts(i128),
    Bool(bool),
    /// A list of strings (null elements dropped).
    List(Vec<String>),
    Other,
}

/// A decoded column.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub(crate) ty: ColTy,
    pub(crate) cells: Vec<Cell>,
    /// The column's name in the source files (for messages).
    pub(crate) source: String,
}

/// A decoded table, columns under their names after mapping.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) desc: String,
    pub(crate) cols: BTreeMap<String, Column>,
    pub(crate) nrows: usize,
}

impl Table {
    pub(crate) fn col(&self, name: &str) -> Option<&Column> {
        self.cols.get(name)
    }
}

/// Where a table is and how its columns are renamed.
#[derive(Clone, Debug)]
pub(crate) struct TableSpec {
    pub(crate) path: PathBuf,
    /// `(name after mapping, source column)`.
    pub(crate) renames: Vec<(String, String)>,
    pub(crate) exclude: Vec<String>,
}

/// The four table names, in the order they are read.
pub(crate) const TABLES: [&str; 4] = ["customers", "orders", "order_lines", "products"];

fn default_location(data_dir: &Path, name: &str) -> Option<PathBuf> {
    let file = data_dir.join(format!("{name}.parquet"));
    if file.is_file() {
        return Some(file);
    }
    let dir = data_dir.join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    None
}

/// Finds the four tables. A table absent from the mapping file (or every
/// table, without one) is looked for at its default location.
pub(crate) fn locate(
    data_dir: &Path,
    mapping: Option<&Path>,
) -> Result<BTreeMap<String, Option<TableSpec>>, String> {
    let mut sections: BTreeMap<String, toml::Table> = BTreeMap::new();
    if let Some(m) = mapping {
        let text = std::fs::read_to_string(m)
            .map_err(|e| format!("mapping file {}: cannot read: {e}", m.display()))?;
        let t: toml::Table = text
            .parse()
            .map_err(|e| format!("mapping file {}: invalid TOML: {e}", m.display()))?;
        for (k, v) in t {
            if !TABLES.contains(&k.as_str()) {
                return Err(format!(
                    "mapping file {}: unknown section [{k}] (expected customers, orders, order_lines, products)",
                    m.display()
                ));
            }
            match v {
                toml::Value::Table(tab) => {
                    sections.insert(k, tab);
                }
                _ => {
                    return Err(format!(
                        "mapping file {}: `{k}` must be a [section]",
                        m.display()
                    ));
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for name in TABLES {
        let mut spec = TableSpec {
            path: PathBuf::new(),
            renames: Vec::new(),
            exclude: Vec::new(),
        };
        let mut path = None;
        if let Some(sec) = sections.get(name) {
            for (k, v) in sec {
                match (k.as_str(), v) {
                    ("path", toml::Value::String(p)) => path = Some(data_dir.join(p)),
                    ("exclude", toml::Value::Array(a)) => {
                        for x in a {
                            match x {
                                toml::Value::String(s) => spec.exclude.push(s.clone()),
                                _ => {
                                    return Err(format!(
                                        "mapping [{name}].exclude: entries must be strings"
                                    ));
                                }
                            }
                        }
                    }
                    (_, toml::Value::String(src)) if k != "path" => {
                        spec.renames.push((k.clone(), src.clone()))
                    }
                    _ => {
                        return Err(format!(
                            "mapping [{name}].{k}: expected a string (or exclude = [strings])"
                        ));
                    }
                }
            }
        }
        let path = match path {
            Some(p) => {
                if !p.exists() {
                    return Err(format!("table {name}: {} does not exist", p.display()));
                }
                Some(p)
            }
            None => default_location(data_dir, name),
        };
        out.insert(
            name.to_string(),
            path.map(|p| {
                spec.path = p;
                spec
            }),
        );
    }
    Ok(out)
}

fn parquet_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let rd =
        std::fs::read_dir(path).map_err(|e| format!("{}: cannot list: {e}", path.display()))?;
    let mut files = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| format!("{}: cannot list: {e}", path.display()))?;
        let p = ent.path();
        let fname = ent.file_name().to_string_lossy().to_string();
        if p.is_file()
            && fname.ends_with(".parquet")
            && !fname.starts_with('.')
            && !fname.starts_with('_')
        {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no .parquet files", path.display()));
    }
    Ok(files)
}

fn is_stringy(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_stringy(v),
        _ => false,
    }
}

fn to_strings(arr: &ArrayRef, ctx: &str) -> Result<Vec<Option<String>>, String> {
    let a = arrow_cast::cast(arr, &DataType::Utf8).map_err(|e| format!("{ctx}: {e}"))?;
    let a = a.as_string::<i32>();
    Ok((0..a.len())
        .map(|i| {
            if a.is_null(i) {
                None
            } else {
                Some(a.value(i).to_string())
            }
        })
        .collect())
}

/// Decodes one Arrow column.
fn decode(arr: &ArrayRef, ctx: &str) -> Result<(ColTy, Vec<Cell>), String> {
    let n = arr.len();
    let null = |i: usize| arr.is_null(i);
    let err = |e: arrow_schema::ArrowError| format!("{ctx}: {e}");
    let dt = arr.data_type().clone();
    let out = match &dt {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => {
            let a = arrow_cast::cast(arr, &DataType::Int64).map_err(err)?;
            let a = a.as_primitive::<Int64Type>();
            let cells = (0..n)
                .map(|i| {
                    if null(i) {
                        Cell::Null
                    } else {
                        Cell::Int(a.value(i) as i128)
                    }
                })
                .collect();
            (ColTy::Int, cells)
        }
        DataType::UInt64 => {
            let a = arr.as_primitive::<UInt64Type>();
            let cells = (0..n)
                .map(|i| {
                    if null(i) {
                        Cell::Null
                    } else {
                        Cell::Int(a.value(i) as i128)
                    }
                })
                .collect();
            (ColTy::Int, cells)
        }
        t if is_stringy(t) => {
            let cells = to_strings(arr, ctx)?
                .into_iter()
                .map(|s| s.map_or(Cell::Null, Cell::Str))
                .collect();
            (ColTy::Str, cells)
        }
        DataType::Dictionary(_, v) => {
            let a = arrow_cast::cast(arr, v).map_err(err)?;
            return decode(&a, ctx);
        }
        DataType::Float16 | DataType::Float32 => {
            let a = arrow_cast::cast(arr, &DataType::Float32).map_err(err)?;
            let a = a.as_primitive::<Float32Type>();
            let cells = (0..n)
                .map(|i| {
                    if null(i) {
                        Cell::Null
                    } else {
                        Dec::from_f32(a.value(i)).map_or(Cell::Null, Cell::Num)
                    }
                })
                .collect();
            (ColTy::Float, cells)
        }
        DataType::Float64 => {
            let a = arr.as_primitive::<Float64Type>();
            let cells = (0..n)
                .map(|i| {
                    if null(i) {
                        Cell::Null
                    } else {
                        Dec::from_f64(a.value(i)).map_or(Cell::Null, Cell::Num)
                    }
                })
                .collect();
            (ColTy::Float, cells)
        }
        DataType::Decimal32(_, s) | DataType::Decimal64(_, s) | DataType::Decimal128(_, s) => {
            let s = *s;
            let a = arrow_cast::cast(arr, &DataType::Decimal128(38, s)).map_err(err)?;
            let a = a.as_primitive::<Decimal128Type>();
            let cells = (0..n)
                .map(|i| {
                    if null(i) {
                        Cell::Null
                    } else {
                        Cell::Num(Dec::from_scaled(a.value(i), s as i64))
                    }
                })
                .collect();
            (ColTy::Decimal, cells)
        }
        DataType::Decimal256(_, s) => {
            let a = arr.as_primitive::<Decimal256Type>();
            let mut cells = Vec::with_capacity(n);
            for i in 0..n {
                if null(i) {
                    cells.push(Cell::Null);
                } else {
                    let txt = a.value(i).to_string();
                    let d = Dec::parse(&txt)
                        .ok_or_else(|| format!("{ctx}: bad decimal256 value {txt}"))?;
                    cells.push(Cell::Num(d.scaled(-(*s as i64))));
                }
            }
            (ColTy::Decimal, cells)
        }
        DataType::Date32 => {
            let a = arr.as_primitive::<Date32Type>();
            let cells = (0..n)
                .map(|i| {
                    if null(i) {
                        Cell::Null
                    } else {
                        Cell::Day(a.value(i) as i128)
                    }
                })
                .collect();
            (ColTy::Date, cells)
        }
        DataType::Date64 => {
            let a = arr.as_primitive::<Date64Type>();
            let cells = (0..n)
                .map(|i| {
                    if null(i) {
                        Cell::Null
                    } else {
                        Cell::Day((a.value(i) as i128).div_euclid(86_400_000))
                    }
                })
                .collect();
            (ColTy::Date, cells)
        }
        DataType::Timestamp(unit, _) => {
            let (vals, mult): (Vec<Option<i64>>, i128) = match unit {
                TimeUnit::Second => (
                    arr.as_primitive::<TimestampSecondType>().iter().collect(),
                    1_000_000_000,
                ),
                TimeUnit::Millisecond => (
                    arr.as_primitive::<TimestampMillisecondType>()
                        .iter()
                        .collect(),
                    1_000_000,
                ),
                TimeUnit::Microsecond => (
                    arr.as_primitive::<TimestampMicrosecondType>()
                        .iter()
                        .collect(),
                    1_000,
                ),
                TimeUnit::Nanosecond => (
                    arr.as_primitive::<TimestampNanosecondType>()
                        .iter()
                        .collect(),
                    1,
                ),
            };
            let cells = vals
                .into_iter()
                .map(|v| v.map_or(Cell::Null, |v| Cell::Ts(v as i128 * mult)))
                .collect();
            (ColTy::Timestamp, cells)
        }
        DataType::Boolean => {
            let a = arr.as_boolean();
            let cells = (0..n)
                .map(|i| {
                    if null(i) {
                        Cell::Null
                    } else {
                        Cell::Bool(a.value(i))
                    }
                })
                .collect();
            (ColTy::Bool, cells)
        }
        DataType::List(f) | DataType::LargeList(f) if is_stringy(f.data_type()) => {
            let mut cells = Vec::with_capacity(n);
            for i in 0..n {
                if null(i) {
                    cells.push(Cell::Null);
                    continue;
                }
                let row: ArrayRef = match &dt {
                    DataType::List(_) => arr.as_list::<i32>().value(i),
                    _ => arr.as_list::<i64>().value(i),
                };
                let items: Vec<String> = to_strings(&row, ctx)?.into_iter().flatten().collect();
                cells.push(Cell::List(items));
            }
            (ColTy::ListStr, cells)
        }
        other => (ColTy::Other(format!("{other}")), vec![Cell::Other; n]),
    };
    Ok(out)
}

/// Reads table `name` at `spec`, applying excludes (source names) and then
/// renames. An unmapped source column may not take a name the mapping gives
/// to another column; `reserved` are names no column may take at all (e.g.
/// `age` on customers).
pub(crate) fn read_table(name: &str, spec: &TableSpec, reserved: &[&str]) -> Result<Table, String> {
    let files = parquet_files(&spec.path)?;
    let desc = spec.path.display().to_string();
    let mut raw: BTreeMap<String, Column> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut nrows = 0usize;
    for (fi, file) in files.iter().enumerate() {
        let fdesc = file.display().to_string();
        let f = File::open(file).map_err(|e| format!("{fdesc}: cannot open: {e}"))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(f)
            .map_err(|e| format!("{fdesc}: unreadable Parquet: {e}"))?;
        let schema = builder.schema().clone();
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let uniq: BTreeSet<&String> = names.iter().collect();
        if uniq.len() != names.len() {
            return Err(format!("{fdesc}: duplicate column names"));
        }
        if fi == 0 {
            order = names.clone();
            for nm in &names {
                raw.insert(
                    nm.clone(),
                    Column {
                        ty: ColTy::Other("unset".into()),
                        cells: Vec::new(),
                        source: nm.clone(),
                    },
                );
            }
        } else {
            let a: BTreeSet<&String> = order.iter().collect();
            if a != uniq {
                return Err(format!(
                    "{fdesc}: its columns differ from those of {}",
                    files[0].display()
                ));
            }
        }
        let reader = builder
            .build()
            .map_err(|e| format!("{fdesc}: unreadable Parquet: {e}"))?;
        let mut first_batch_seen = false;
        for batch in reader {
            let batch = batch.map_err(|e| format!("{fdesc}: unreadable Parquet: {e}"))?;
            for (idx, field) in schema.fields().iter().enumerate() {
                let arr: ArrayRef = Arc::clone(batch.column(idx));
                let ctx = format!("{fdesc}: column {}", field.name());
                let (ty, cells) = decode(&arr, &ctx)?;
                let col = raw.get_mut(field.name()).expect("column registered");
                if col.ty == ColTy::Other("unset".into()) {
                    col.ty = ty;
                } else if col.ty != ty {
                    return Err(format!(
                        "{ctx}: type {:?} differs from {:?} in another file",
                        ty, col.ty
                    ));
                }
                col.cells.extend(cells);
            }
            nrows += batch.num_rows();
            first_batch_seen = true;
        }
        if !first_batch_seen {
            // No rows: still settle the types from the schema.
            for field in schema.fields() {
                let empty = arrow_array::new_empty_array(field.data_type());
                let (ty, _) = decode(&empty, &format!("{fdesc}: column {}", field.name()))?;
                let col = raw.get_mut(field.name()).expect("column registered");
                if col.ty == ColTy::Other("unset".into()) {
                    col.ty = ty;
                } else if col.ty != ty {
                    return Err(format!(
                        "{fdesc}: column {}: type differs from another file",
                        field.name()
                    ));
                }
            }
        }
    }
    // Apply excludes and renames.
    for ex in &spec.exclude {
        raw.remove(ex);
    }
    let mut cols: BTreeMap<String, Column> = BTreeMap::new();
    let mapped_sources: BTreeSet<&str> = spec.renames.iter().map(|(_, s)| s.as_str()).collect();
    let targets: BTreeSet<&str> = spec.renames.iter().map(|(t, _)| t.as_str()).collect();
    for (target, source) in &spec.renames {
        if reserved.contains(&target.as_str()) {
            return Err(format!(
                "mapping [{name}]: `{target}` is a derived attribute name; map the column to another name"
            ));
        }
        let col = raw.get(source).ok_or_else(|| {
            format!("{desc}: column `{source}` (mapped to `{target}`) does not exist")
        })?;
        cols.insert(target.clone(), col.clone());
    }
    for (src, col) in raw {
        if mapped_sources.contains(src.as_str()) {
            continue;
        }
        if targets.contains(src.as_str()) || reserved.contains(&src.as_str()) {
            return Err(format!(
                "{desc}: column `{src}` would take the name `{src}`, which {}; rename it in the mapping file",
                if reserved.contains(&src.as_str()) {
                    "is reserved for a derived attribute"
                } else {
                    "the mapping gives to another column"
                }
            ));
        }
        cols.insert(src, col);
    }
    Ok(Table { desc, cols, nrows })
}
