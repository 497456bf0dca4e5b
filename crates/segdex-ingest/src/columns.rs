//! Normalising user column types to what the index needs.

use crate::tables::Batch;
use crate::{IngestError, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, BooleanArray, Int64Array, ListArray, StringArray};
use arrow_schema::{DataType, TimeUnit};
use std::sync::Arc;

/// What a column's Arrow type makes it, for custom attributes (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueClass {
    /// Any string type (including dictionary-encoded): categorical.
    Str,
    /// A list of strings: multi-valued categorical.
    StrList,
    /// Any integer type: numeric (or categorical for id-like columns).
    Int,
    /// Float32/Float64: numeric.
    Float,
    /// A decimal with this scale: numeric.
    Decimal(i8),
    /// Date32/Date64: date.
    Date,
    /// A timestamp of any unit, with or without zone: date (its local day).
    Timestamp,
    /// Boolean: flag.
    Bool,
    /// Anything else.
    Unsupported,
}

/// Classifies an Arrow type.
pub fn classify(dt: &DataType) -> ValueClass {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ValueClass::Str,
        DataType::Dictionary(_, v) if classify(v) == ValueClass::Str => ValueClass::Str,
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f)
            if classify(f.data_type()) == ValueClass::Str =>
        {
            ValueClass::StrList
        }
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => ValueClass::Int,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => ValueClass::Float,
        DataType::Decimal32(_, s)
        | DataType::Decimal64(_, s)
        | DataType::Decimal128(_, s)
        | DataType::Decimal256(_, s) => ValueClass::Decimal(*s),
        DataType::Date32 | DataType::Date64 => ValueClass::Date,
        DataType::Timestamp(_, _) => ValueClass::Timestamp,
        DataType::Boolean => ValueClass::Bool,
        _ => ValueClass::Unsupported,
    }
}

/// The column `i` of a batch, with where it came from for error messages.
pub struct Col<'a> {
    /// The array.
    pub array: &'a ArrayRef,
    batch: &'a Batch<'a>,
    index: usize,
}

/// Borrows column `i` of `batch`.
pub fn col<'a>(batch: &'a Batch<'a>, i: usize) -> Col<'a> {
    Col {
        array: batch.batch.column(i),
        batch,
        index: i,
    }
}

impl Col<'_> {
    /// An error about the value at `row` (batch-relative).
    pub fn bad(&self, row: usize, value: impl std::fmt::Display, message: &str) -> IngestError {
        IngestError::BadValue {
            path: self.batch.file.to_path_buf(),
            column: self.batch.source(self.index).to_string(),
            row: self.batch.first_row + row as u64,
            value: value.to_string(),
            message: message.to_string(),
        }
    }

    /// A wrong-type error for this column.
    pub fn wrong_type(&self, expected: &str) -> IngestError {
        IngestError::WrongType {
            path: self.batch.file.to_path_buf(),
            column: self.batch.source(self.index).to_string(),
            found: self.array.data_type().to_string(),
            expected: expected.to_string(),
        }
    }

    fn cast_err(&self, e: arrow_schema::ArrowError, expected: &str) -> IngestError {
        IngestError::WrongType {
            path: self.batch.file.to_path_buf(),
            column: self.batch.source(self.index).to_string(),
            found: format!("{} ({e})", self.array.data_type()),
            expected: expected.to_string(),
        }
    }

    /// Any integer column as Int64 (UInt64 values above i64::MAX are an error).
    pub fn int64(&self) -> Result<Int64Array> {
        if classify(self.array.data_type()) != ValueClass::Int {
            return Err(self.wrong_type("an integer type"));
        }
        if let Some(a) = self.array.as_primitive_opt::<UInt64Type>()
            && let Some((row, v)) = a
                .iter()
                .enumerate()
                .find_map(|(r, v)| v.filter(|&v| v > i64::MAX as u64).map(|v| (r, v)))
        {
            return Err(self.bad(row, v, "integer does not fit in int64"));
        }
        let cast = arrow_cast::cast(self.array, &DataType::Int64)
            .map_err(|e| self.cast_err(e, "int64"))?;
        Ok(cast.as_primitive::<Int64Type>().clone())
    }

    /// Any string column (plain, large, view, dictionary) as Utf8.
    pub fn utf8(&self) -> Result<StringArray> {
        if classify(self.array.data_type()) != ValueClass::Str {
            return Err(self.wrong_type("a string type"));
        }
        let cast =
            arrow_cast::cast(self.array, &DataType::Utf8).map_err(|e| self.cast_err(e, "utf8"))?;
        Ok(cast.as_string::<i32>().clone())
    }

    /// A list-of-strings column as List<Utf8>.
    pub fn utf8_list(&self) -> Result<ListArray> {
        if classify(self.array.data_type()) != ValueClass::StrList {
            return Err(self.wrong_type("a list of strings"));
        }
        let target = DataType::List(Arc::new(arrow_schema::Field::new(
            "item",
            DataType::Utf8,
            true,
        )));
        let cast =
            arrow_cast::cast(self.array, &target).map_err(|e| self.cast_err(e, "list<utf8>"))?;
        Ok(cast.as_list::<i32>().clone())
    }

    /// A boolean column.
    pub fn bools(&self) -> Result<BooleanArray> {
        self.array
            .as_boolean_opt()
            .cloned()
            .ok_or_else(|| self.wrong_type("boolean"))
    }

    /// A timestamp column as nanoseconds since the Unix epoch (UTC; naive
    /// timestamps are read as UTC).
    pub fn instants_ns(&self) -> Result<Vec<Option<i64>>> {
        let DataType::Timestamp(unit, _) = self.array.data_type() else {
            return Err(self.wrong_type("a timestamp"));
        };
        let (raw, factor): (Vec<Option<i64>>, i64) = match unit {
            TimeUnit::Second => (prim::<TimestampSecondType>(self.array), 1_000_000_000),
            TimeUnit::Millisecond => (prim::<TimestampMillisecondType>(self.array), 1_000_000),
            TimeUnit::Microsecond => (prim::<TimestampMicrosecondType>(self.array), 1_000),
            TimeUnit::Nanosecond => (prim::<TimestampNanosecondType>(self.array), 1),
        };
        raw.into_iter()
            .enumerate()
            .map(|(row, v)| match v {
                None => Ok(None),
                Some(v) => v
                    .checked_mul(factor)
                    .map(Some)
                    .ok_or_else(|| self.bad(row, v, "timestamp outside the years 1677..2262")),
            })
            .collect()
    }

    /// A date column as days since 1970-01-01.
    pub fn days(&self) -> Result<Vec<Option<i32>>> {
        match self.array.data_type() {
            DataType::Date32 => Ok(prim::<Date32Type>(self.array)),
            DataType::Date64 => Ok(prim::<Date64Type>(self.array)
                .into_iter()
                .map(|v| v.map(|ms| ms.div_euclid(86_400_000) as i32))
                .collect()),
            _ => Err(self.wrong_type("a date")),
        }
    }

    /// A money column (decimal, float or integer currency units) as exact
    /// cents, rounded half away from zero.
    pub fn cents(&self) -> Result<Vec<Option<i64>>> {
        let overflow = |row: usize, v: &dyn std::fmt::Display| {
            self.bad(row, v, "amount does not fit in 64-bit cents")
        };
        let scaled = |vals: Vec<Option<i128>>, scale: i8| -> Result<Vec<Option<i64>>> {
            vals.into_iter()
                .enumerate()
                .map(|(row, v)| match v {
                    None => Ok(None),
                    Some(v) => crate::money::scaled_to_cents(v, scale)
                        .map(Some)
                        .ok_or_else(|| overflow(row, &v)),
                })
                .collect()
        };
        match self.array.data_type() {
            DataType::Decimal32(_, s) => scaled(
                prim::<Decimal32Type>(self.array)
                    .into_iter()
                    .map(|v| v.map(i128::from))
                    .collect(),
                *s,
            ),
            DataType::Decimal64(_, s) => scaled(
                prim::<Decimal64Type>(self.array)
                    .into_iter()
                    .map(|v| v.map(i128::from))
                    .collect(),
                *s,
            ),
            DataType::Decimal128(_, s) => scaled(prim::<Decimal128Type>(self.array), *s),
            DataType::Decimal256(_, s) => {
                let a = self.array.as_primitive::<Decimal256Type>();
                let vals = a
                    .iter()
                    .enumerate()
                    .map(|(row, v)| match v {
                        None => Ok(None),
                        Some(v) => v.to_i128().map(Some).ok_or_else(|| overflow(row, &v)),
                    })
                    .collect::<Result<Vec<_>>>()?;
                scaled(vals, *s)
            }
            DataType::Float16 | DataType::Float32 => {
                // Through f32's own shortest text: 1.005f32 is "1.005".
                let cast = arrow_cast::cast(self.array, &DataType::Float32)
                    .map_err(|e| self.cast_err(e, "float32"))?;
                cast.as_primitive::<Float32Type>()
                    .iter()
                    .enumerate()
                    .map(|(row, v)| match v {
                        None => Ok(None),
                        Some(x) if !x.is_finite() => Err(overflow(row, &x)),
                        Some(x) => crate::money::decimal_str_to_cents(&format!("{x}"))
                            .map(Some)
                            .ok_or_else(|| overflow(row, &x)),
                    })
                    .collect()
            }
            DataType::Float64 => {
                let cast = arrow_cast::cast(self.array, &DataType::Float64)
                    .map_err(|e| self.cast_err(e, "float64"))?;
                cast.as_primitive::<Float64Type>()
                    .iter()
                    .enumerate()
                    .map(|(row, v)| match v {
                        None => Ok(None),
                        Some(x) => crate::money::float_to_cents(x)
                            .map(Some)
                            .ok_or_else(|| overflow(row, &x)),
                    })
                    .collect()
            }
            _ if classify(self.array.data_type()) == ValueClass::Int => {
                let ints = self.int64()?;
                ints.iter()
                    .enumerate()
                    .map(|(row, v)| match v {
                        None => Ok(None),
                        Some(v) => v
                            .checked_mul(100)
                            .map(Some)
                            .ok_or_else(|| overflow(row, &v)),
                    })
                    .collect()
            }
            _ => Err(self.wrong_type("a decimal, float or integer amount")),
        }
    }

    /// A numeric column as f64 (for float custom attributes).
    pub fn floats(&self) -> Result<Vec<Option<f64>>> {
        if classify(self.array.data_type()) != ValueClass::Float {
            return Err(self.wrong_type("a float"));
        }
        if matches!(
            self.array.data_type(),
            DataType::Float16 | DataType::Float32
        ) {
            // Through f32's own shortest text, as money is: 0.1f32 is 0.1,
            // not 0.10000000149011612.
            let cast = arrow_cast::cast(self.array, &DataType::Float32)
                .map_err(|e| self.cast_err(e, "float32"))?;
            return Ok(cast
                .as_primitive::<Float32Type>()
                .iter()
                .map(|v| v.map(|x| format!("{x}").parse().unwrap_or(f64::from(x))))
                .collect());
        }
        let cast = arrow_cast::cast(self.array, &DataType::Float64)
            .map_err(|e| self.cast_err(e, "float64"))?;
        Ok(cast.as_primitive::<Float64Type>().iter().collect())
    }

    /// A decimal column's unscaled values (the scale is in its type).
    pub fn unscaled_decimals(&self) -> Result<Vec<Option<i128>>> {
        Ok(match self.array.data_type() {
            DataType::Decimal32(_, _) => prim::<Decimal32Type>(self.array)
                .into_iter()
                .map(|v| v.map(i128::from))
                .collect(),
            DataType::Decimal64(_, _) => prim::<Decimal64Type>(self.array)
                .into_iter()
                .map(|v| v.map(i128::from))
                .collect(),
            DataType::Decimal128(_, _) => prim::<Decimal128Type>(self.array),
            DataType::Decimal256(_, _) => {
                let a = self.array.as_primitive::<Decimal256Type>();
                a.iter()
                    .enumerate()
                    .map(|(row, v)| match v {
                        None => Ok(None),
                        Some(v) => v
                            .to_i128()
                            .map(Some)
                            .ok_or_else(|| self.bad(row, v, "decimal does not fit in 128 bits")),
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            _ => return Err(self.wrong_type("a decimal")),
        })
    }
}

fn prim<T: ArrowPrimitiveType>(a: &ArrayRef) -> Vec<Option<T::Native>> {
    a.as_primitive::<T>().iter().collect()
}
