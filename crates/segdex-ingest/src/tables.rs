//! Finding, checking and reading the four input tables.

use crate::mapping::{Mapping, TableMapping};
use crate::{IngestError, Result};
use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows per record batch: large batches amortise decoding overhead.
pub const BATCH_SIZE: usize = 64 * 1024;

/// The four input tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableKind {
    /// customers (required)
    Customers,
    /// orders (optional when lines carry the order columns)
    Orders,
    /// order_lines (required)
    OrderLines,
    /// products (required)
    Products,
}

impl TableKind {
    /// All tables, in reading order.
    pub const ALL: [TableKind; 4] = [
        TableKind::Customers,
        TableKind::Orders,
        TableKind::OrderLines,
        TableKind::Products,
    ];

    /// The canonical table name.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Customers => "customers",
            TableKind::Orders => "orders",
            TableKind::OrderLines => "order_lines",
            TableKind::Products => "products",
        }
    }

    /// Parses a canonical table name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The canonical columns of the table (SPEC §1).
    pub fn canonical_columns(self) -> &'static [&'static str] {
        match self {
            TableKind::Customers => &[
                "customer_id",
                "first_name",
                "last_name",
                "email",
                "customer_type",
                "gender",
                "birth_date",
                "tags",
                "country",
                "postal_code",
                "home_store_id",
                "loyalty_tier",
                "loyalty_points_lifetime",
                "loyalty_points_spendable",
                "registered_at",
                "last_contacted_at",
                "med_id_expires_on",
            ],
            TableKind::Orders => &[
                "order_id",
                "customer_id",
                "store_id",
                "ordered_at",
                "payment_method",
                "offer_code",
                "channel",
            ],
            TableKind::OrderLines => &[
                "order_id",
                "product_id",
                "quantity",
                "line_total",
                "customer_id",
                "store_id",
                "ordered_at",
                "payment_method",
                "offer_code",
                "channel",
            ],
            TableKind::Products => &[
                "product_id",
                "sku",
                "brand",
                "product_type",
                "strain",
                "name",
                "tags",
            ],
        }
    }

    /// Names the engine derives itself, which no source column may take.
    pub fn derived_names(self) -> &'static [&'static str] {
        match self {
            TableKind::Customers => &["age"],
            // `where` keys that are not product columns.
            TableKind::Products => &[
                "product_tag",
                "store",
                "payment_method",
                "offer_code",
                "channel",
            ],
            _ => &[],
        }
    }

    /// Whether other columns become custom attributes (else they are ignored).
    pub fn takes_custom_columns(self) -> bool {
        matches!(self, TableKind::Customers | TableKind::Products)
    }
}

/// One column of a table after mapping.
#[derive(Debug, Clone)]
pub struct Column {
    /// The name the engine uses (canonical, or the column's own).
    pub name: String,
    /// The column's name in the files.
    pub source: String,
    /// Its Arrow type (the same in every file of the table).
    pub data_type: DataType,
    root: usize,
}

/// A table: its files, its columns after mapping, and where to read.
#[derive(Debug, Clone)]
pub struct Table {
    /// Which table.
    pub kind: TableKind,
    /// The file or directory it was found at.
    pub location: PathBuf,
    /// Its Parquet files, in name order.
    pub files: Vec<PathBuf>,
    /// Its columns after mapping (excluded and ignored ones removed).
    pub columns: Vec<Column>,
    /// Total rows over all files.
    pub rows: u64,
    metas: Vec<ArrowReaderMetadata>,
    mapping_path: Option<PathBuf>,
}

/// One record batch read from a table, with its columns under engine names.
pub struct Batch<'a> {
    /// The columns asked for, in the order asked.
    pub batch: RecordBatch,
    /// The file it came from.
    pub file: &'a Path,
    /// Row number (within the file) of the batch's first row.
    pub first_row: u64,
    /// Source column names, parallel to the batch's columns.
    pub sources: Vec<&'a str>,
}

impl Batch<'_> {
    /// The source name of the batch's column `i` (for error messages).
    pub fn source(&self, i: usize) -> &str {
        self.sources[i]
    }
}

impl Table {
    /// The column with engine name `name`, if present.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The column `name`, or an error saying it is required.
    pub fn require(&self, name: &str) -> Result<&Column> {
        self.column(name).ok_or_else(|| {
            let hint = match &self.mapping_path {
                Some(m) => format!(
                    " (map it in {} under [{}] as {name} = \"your column\")",
                    m.display(),
                    self.kind.name()
                ),
                None => format!(
                    " (name it `{name}`, or pass --mapping with [{}] {name} = \"your column\")",
                    self.kind.name()
                ),
            };
            IngestError::MissingColumn {
                path: self.files.first().cloned().unwrap_or(self.location.clone()),
                column: name.to_string(),
                hint,
            }
        })
    }

    /// Reads the named columns of every row group in parallel and maps each
    /// batch with `f`; results come back in file and row order.
    pub fn read<T, E, F>(&self, names: &[&str], f: F) -> Result<Vec<T>, E>
    where
        T: Send,
        E: From<IngestError> + Send,
        F: Fn(&Batch<'_>) -> Result<T, E> + Sync,
    {
        let cols: Vec<&Column> = names
            .iter()
            .map(|n| self.require(n))
            .collect::<Result<_>>()?;
        let mut units = Vec::new();
        for (fi, meta) in self.metas.iter().enumerate() {
            let mut first = 0u64;
            for rg in 0..meta.metadata().num_row_groups() {
                units.push((fi, rg, first));
                first += meta.metadata().row_group(rg).num_rows() as u64;
            }
        }
        let per_unit: Vec<Vec<T>> = units
            .par_iter()
            .map(|&(fi, rg, first_row)| self.read_unit(fi, rg, first_row, &cols, &f))
            .collect::<Result<_, E>>()?;
        Ok(per_unit.into_iter().flatten().collect())
    }

    fn read_unit<T, E, F>(
        &self,
        fi: usize,
        rg: usize,
        mut first_row: u64,
        cols: &[&Column],
        f: &F,
    ) -> Result<Vec<T>, E>
    where
        E: From<IngestError>,
        F: Fn(&Batch<'_>) -> Result<T, E>,
    {
        let path = &self.files[fi];
        let perr = |e: &dyn std::fmt::Display| IngestError::Parquet {
            path: path.clone(),
            message: e.to_string(),
        };
        // One handle per worker: cloned handles would share a file offset.
        let file = File::open(path).map_err(|e| IngestError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let meta = self.metas[fi].clone();
        let mask = ProjectionMask::roots(meta.parquet_schema(), cols.iter().map(|c| c.root));
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta)
            .with_row_groups(vec![rg])
            .with_projection(mask)
            .with_batch_size(BATCH_SIZE)
            .build()
            .map_err(|e| perr(&e))?;
        let mut out = Vec::new();
        for batch in reader {
            let (renamed, sources) = self.rename(batch.map_err(|e| perr(&e))?, cols, path)?;
            let rows = renamed.num_rows() as u64;
            out.push(f(&Batch {
                batch: renamed,
                file: path,
                first_row,
                sources,
            })?);
            first_row += rows;
        }
        Ok(out)
    }

    fn rename<'c>(
        &self,
        batch: RecordBatch,
        cols: &[&'c Column],
        path: &Path,
    ) -> Result<(RecordBatch, Vec<&'c str>)> {
        let perr = |e: &dyn std::fmt::Display| IngestError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        {
            // The projection keeps schema order; put columns in asked order.
            let schema = batch.schema();
            let columns = cols
                .iter()
                .map(|c| {
                    let i = schema.index_of(&c.source).map_err(|e| perr(&e))?;
                    Ok(batch.column(i).clone())
                })
                .collect::<Result<Vec<_>>>()?;
            let fields: Vec<arrow_schema::Field> = cols
                .iter()
                .zip(&columns)
                .map(|(c, a)| arrow_schema::Field::new(&c.name, a.data_type().clone(), true))
                .collect();
            let renamed =
                RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns)
                    .map_err(|e| perr(&e))?;
            Ok((renamed, cols.iter().map(|c| c.source.as_str()).collect()))
        }
    }
}

/// The input tables found under a data directory.
#[derive(Debug, Clone)]
pub struct Sources {
    /// customers
    pub customers: Table,
    /// orders, when present (else lines carry the order columns)
    pub orders: Option<Table>,
    /// order_lines
    pub order_lines: Table,
    /// products
    pub products: Table,
}

impl Sources {
    /// Finds the tables under `data_dir` (through `mapping` if given) and
    /// checks their schemas; nothing but metadata is read.
    pub fn resolve(data_dir: &Path, mapping: Option<&Mapping>) -> Result<Self> {
        let table = |kind: TableKind| -> Result<Option<Table>> {
            let tm = mapping.and_then(|m| m.tables.get(&kind));
            open_table(data_dir, kind, tm, mapping.map(|m| m.path.as_path()))
        };
        let missing = |kind: TableKind| IngestError::MissingTable {
            table: kind.name(),
            message: format!(
                "looked for {0}.parquet or a directory {0}/ under {1}",
                kind.name(),
                data_dir.display()
            ),
        };
        let customers =
            table(TableKind::Customers)?.ok_or_else(|| missing(TableKind::Customers))?;
        let orders = table(TableKind::Orders)?;
        let order_lines =
            table(TableKind::OrderLines)?.ok_or_else(|| missing(TableKind::OrderLines))?;
        let products = table(TableKind::Products)?.ok_or_else(|| missing(TableKind::Products))?;
        Ok(Self {
            customers,
            orders,
            order_lines,
            products,
        })
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> IngestError {
    IngestError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn open_table(
    data_dir: &Path,
    kind: TableKind,
    tm: Option<&TableMapping>,
    mapping_path: Option<&Path>,
) -> Result<Option<Table>> {
    let location = match tm.and_then(|t| t.path.as_ref()) {
        Some(p) => {
            let loc = data_dir.join(p);
            if !loc.exists() {
                return Err(IngestError::MissingTable {
                    table: kind.name(),
                    message: format!(
                        "the mapping gives path `{p}` but {} does not exist",
                        loc.display()
                    ),
                });
            }
            loc
        }
        None => {
            let file = data_dir.join(format!("{}.parquet", kind.name()));
            let dir = data_dir.join(kind.name());
            if file.is_file() {
                file
            } else if dir.is_dir() {
                dir
            } else {
                return Ok(None);
            }
        }
    };
    let files = if location.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&location)
            .map_err(|e| io_err(&location, e))?
            .map(|e| e.map(|e| e.path()).map_err(|e| io_err(&location, e)))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|p| {
                // Hidden and side files (`.part.crc`, `_SUCCESS`) are not data.
                let hidden = p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(['.', '_']));
                p.is_file() && !hidden && p.extension().is_some_and(|x| x == "parquet")
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(IngestError::MissingTable {
                table: kind.name(),
                message: format!("{} holds no .parquet files", location.display()),
            });
        }
        files
    } else {
        vec![location.clone()]
    };

    let mut metas = Vec::with_capacity(files.len());
    let mut schema0: Option<(SchemaRef, &Path)> = None;
    let mut rows = 0u64;
    for path in &files {
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        let meta = ArrowReaderMetadata::load(&file, Default::default()).map_err(|e| {
            IngestError::Parquet {
                path: path.clone(),
                message: e.to_string(),
            }
        })?;
        rows += meta.metadata().file_metadata().num_rows() as u64;
        let schema = meta.schema().clone();
        if let Some((s0, p0)) = &schema0 {
            for f in s0.fields() {
                match schema.field_with_name(f.name()) {
                    Ok(g) if g.data_type() == f.data_type() => {}
                    Ok(g) => {
                        return Err(IngestError::WrongType {
                            path: path.clone(),
                            column: f.name().clone(),
                            found: g.data_type().to_string(),
                            expected: format!("{} as in {}", f.data_type(), p0.display()),
                        });
                    }
                    Err(_) => {
                        return Err(IngestError::MissingColumn {
                            path: path.clone(),
                            column: f.name().clone(),
                            hint: format!(" (present in {} of the same table)", p0.display()),
                        });
                    }
                }
            }
        } else {
            schema0 = Some((schema, path));
        }
        metas.push(meta);
    }
    let schema = metas[0].schema().clone();
    let first = files[0].clone();

    let default_mapping = TableMapping::default();
    let tm = tm.unwrap_or(&default_mapping);
    let mapping_err = |message: String| IngestError::Mapping {
        path: mapping_path.map(Path::to_path_buf).unwrap_or_default(),
        message,
    };
    for (canonical, source) in &tm.renames {
        if schema.field_with_name(source).is_err() {
            return Err(mapping_err(format!(
                "[{}] maps `{canonical}` to `{source}`, but {} has no column `{source}`",
                kind.name(),
                first.display()
            )));
        }
    }
    for ex in &tm.exclude {
        if schema.field_with_name(ex).is_err() {
            return Err(mapping_err(format!(
                "[{}] excludes `{ex}`, but {} has no column `{ex}`",
                kind.name(),
                first.display()
            )));
        }
    }
    let by_source: BTreeMap<&str, &str> = tm
        .renames
        .iter()
        .map(|(c, s)| (s.as_str(), c.as_str()))
        .collect();
    let mut columns = Vec::new();
    for (root, field) in schema.fields().iter().enumerate() {
        let source = field.name().as_str();
        let name = match by_source.get(source) {
            Some(canonical) => canonical.to_string(),
            None if tm.exclude.iter().any(|e| e == source) => continue,
            None => {
                let is_canonical = kind.canonical_columns().contains(&source);
                let is_derived = kind.derived_names().contains(&source);
                if (is_canonical && tm.renames.contains_key(source)) || is_derived {
                    let what = if is_derived {
                        "a name segdex derives".to_string()
                    } else {
                        format!(
                            "the canonical name the mapping gives to `{}`",
                            tm.renames[source]
                        )
                    };
                    return Err(IngestError::Mapping {
                        path: mapping_path.map(Path::to_path_buf).unwrap_or(first.clone()),
                        message: format!(
                            "{}: column `{source}` would take {what}; rename it in the mapping under [{}] (e.g. my_{source} = \"{source}\") or exclude it",
                            first.display(),
                            kind.name()
                        ),
                    });
                }
                if !is_canonical && !kind.takes_custom_columns() {
                    continue; // other columns of orders and lines are ignored
                }
                source.to_string()
            }
        };
        columns.push(Column {
            name,
            source: source.to_string(),
            data_type: field.data_type().clone(),
            root,
        });
    }
    Ok(Some(Table {
        kind,
        location,
        files,
        columns,
        rows,
        metas,
        mapping_path: mapping_path.map(Path::to_path_buf),
    }))
}
