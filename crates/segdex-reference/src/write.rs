//! Writing small Parquet tables from plain column vectors (for the random
//! cases and the unit tests).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray,
};
use arrow_schema::{Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;

/// The values of one column to write; `None` is null.
#[derive(Clone, Debug)]
pub(crate) enum ColData {
    I64(Vec<Option<i64>>),
    I32(Vec<Option<i32>>),
    Str(Vec<Option<String>>),
    ListStr(Vec<Option<Vec<String>>>),
    F64(Vec<Option<f64>>),
    /// Unscaled values with precision and scale.
    Dec128(Vec<Option<i128>>, u8, i8),
    /// Days since 1970-01-01.
    Date32(Vec<Option<i32>>),
    /// Values in `unit` since the epoch, with an optional zone annotation.
    Ts(Vec<Option<i64>>, TimeUnit, Option<String>),
    Bool(Vec<Option<bool>>),
}

fn sl<T: Clone>(v: &[T], lo: usize, hi: usize) -> Vec<T> {
    v[lo..hi].to_vec()
}

impl ColData {
    pub(crate) fn len(&self) -> usize {
        match self {
            ColData::I64(v) => v.len(),
            ColData::I32(v) => v.len(),
            ColData::Str(v) => v.len(),
            ColData::ListStr(v) => v.len(),
            ColData::F64(v) => v.len(),
            ColData::Dec128(v, _, _) => v.len(),
            ColData::Date32(v) => v.len(),
            ColData::Ts(v, _, _) => v.len(),
            ColData::Bool(v) => v.len(),
        }
    }

    fn to_array(&self, lo: usize, hi: usize) -> Result<ArrayRef, String> {
        Ok(match self {
            ColData::I64(v) => Arc::new(Int64Array::from(sl(v, lo, hi))),
            ColData::I32(v) => Arc::new(Int32Array::from(sl(v, lo, hi))),
            ColData::Str(v) => Arc::new(StringArray::from(sl(v, lo, hi))),
            ColData::ListStr(v) => {
                let mut b = ListBuilder::new(StringBuilder::new());
                for row in &v[lo..hi] {
                    match row {
                        None => b.append(false),
                        Some(items) => {
                            for s in items {
                                b.values().append_value(s);
                            }
                            b.append(true);
                        }
                    }
                }
                Arc::new(b.finish())
            }
            ColData::F64(v) => Arc::new(Float64Array::from(sl(v, lo, hi))),
            ColData::Dec128(v, p, s) => Arc::new(
                Decimal128Array::from(sl(v, lo, hi))
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| e.to_string())?,
            ),
            ColData::Date32(v) => Arc::new(Date32Array::from(sl(v, lo, hi))),
            ColData::Ts(v, unit, tz) => {
                let tz: Option<Arc<str>> = tz.as_deref().map(Arc::from);
                match unit {
                    TimeUnit::Millisecond => Arc::new(
                        TimestampMillisecondArray::from(sl(v, lo, hi)).with_timezone_opt(tz),
                    ),
                    TimeUnit::Microsecond => Arc::new(
                        TimestampMicrosecondArray::from(sl(v, lo, hi)).with_timezone_opt(tz),
                    ),
                    TimeUnit::Nanosecond => Arc::new(
                        TimestampNanosecondArray::from(sl(v, lo, hi)).with_timezone_opt(tz),
                    ),
                    TimeUnit::Second => return Err("second timestamps are not written".into()),
                }
            }
            ColData::Bool(v) => Arc::new(BooleanArray::from(sl(v, lo, hi))),
        })
    }
}

/// Writes rows `lo..hi` of `cols` to a Parquet file at `path`.
pub(crate) fn write_parquet(
    path: &Path,
    cols: &[(String, ColData)],
    lo: usize,
    hi: usize,
) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (name, c) in cols {
        let a = c.to_array(lo, hi)?;
        fields.push(Field::new(name, a.data_type().clone(), true));
        arrays.push(a);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| e.to_string())?;
    let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = ArrowWriter::try_new(f, schema, None).map_err(|e| e.to_string())?;
    w.write(&batch).map_err(|e| e.to_string())?;
    w.close().map_err(|e| e.to_string())?;
    Ok(())
}
