//! File system helpers (durable writes, links, syncs) and the Parquet
//! files of a state directory.

use crate::{Result, io_err, pq_err};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, compute_leaves};
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use segdex_bitmap::Bitmap;
use segdex_index::{ExternalId, IdKind, Index};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

// ---------------------------------------------------------------------------
// File system

/// Creates `path` (and its parents).
pub(crate) fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| io_err(path, e))
}

/// Writes a new file; an existing file is an error, never truncated (it
/// may be a hard link shared with a committed generation). Not synced:
/// see [`sync_all`].
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    create_new(path)?
        .write_all(bytes)
        .map_err(|e| io_err(path, e))
}

/// Writes a new file (as [`write_file`]) through a buffer: `write` is
/// given the writer, and the buffer is flushed at its end.
pub(crate) fn write_file_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let mut w = BufWriter::with_capacity(WRITE_BUFFER, create_new(path)?);
    write(&mut w)
        .and_then(|()| w.flush())
        .map_err(|e| io_err(path, e))
}

/// The buffer of streamed writes: a few system calls per member file.
const WRITE_BUFFER: usize = 256 << 10;

/// Creates a new file for writing; an existing file is an error.
fn create_new(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io_err(path, e))
}

/// fsyncs a directory (its entries).
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Above this many files, one `syncfs` of the file system is cheaper than
/// an fsync per file.
const SYNCFS_FROM: usize = 256;

/// Makes `files` and `dirs` durable: an fsync each, or (Linux, many files)
/// one `syncfs` of the file system holding `dirs[0]`.
pub(crate) fn sync_all(files: &[PathBuf], dirs: &[PathBuf]) -> Result<()> {
    #[cfg(target_os = "linux")]
    if files.len() >= SYNCFS_FROM
        && let Some(d) = dirs.first()
    {
        use std::os::fd::AsRawFd;
        let f = File::open(d).map_err(|e| io_err(d, e))?;
        // SAFETY: syncfs(2) on a file descriptor we own.
        if unsafe { libc::syncfs(f.as_raw_fd()) } == 0 {
            return Ok(());
        }
        return Err(io_err(d, std::io::Error::last_os_error()));
    }
    let _ = SYNCFS_FROM;
    files.par_iter().try_for_each(|p| {
        File::open(p)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_err(p, e))
    })?;
    dirs.iter().try_for_each(|d| fsync_dir(d))
}

/// Hard-links `from` to `to`, or copies it where links are not possible.
pub(crate) fn link_or_copy(from: &Path, to: &Path) -> Result<bool> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(false);
    }
    std::fs::copy(from, to).map_err(|e| io_err(from, e))?;
    Ok(true)
}

/// Removes a directory tree if it exists.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path, e)),
    }
}

// ---------------------------------------------------------------------------
// Parquet

/// Writer settings for a file of `schema`.
fn props(schema: &Schema) -> WriterProperties {
    let b = WriterProperties::builder().set_compression(Compression::SNAPPY);
    // Integer member and event ids ascend within a segment: delta encoding
    // stores them in a byte or two each (plain + Snappy needs about eight),
    // which is what keeps a pass's writes small at 10M customers.
    let int_ids = schema
        .field_with_name("customer_id")
        .is_ok_and(|f| f.data_type() == &DataType::Int64);
    if !int_ids {
        return b.build();
    }
    let id = ColumnPath::from("customer_id");
    b.set_column_dictionary_enabled(id.clone(), false)
        .set_column_encoding(id.clone(), Encoding::DELTA_BINARY_PACKED)
        .set_column_compression(id, Compression::UNCOMPRESSED)
        .build()
}

/// Encodes `batches` (all of `schema`) as one Parquet file in memory.
pub(crate) fn parquet_bytes(
    path: &Path,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let props = props(&schema);
    let mut w = ArrowWriter::try_new(&mut buf, schema, Some(props)).map_err(|e| pq_err(path, e))?;
    for b in batches {
        w.write(b).map_err(|e| pq_err(path, e))?;
    }
    w.close().map_err(|e| pq_err(path, e))?;
    Ok(buf)
}

/// A Parquet file written batch by batch (a first pass's events can be
/// billions of rows: they are never all in memory). The file is new (as
/// [`write_file`]) and not synced.
pub(crate) struct ParquetStream {
    path: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
}

impl ParquetStream {
    /// Creates `path` for rows of `schema`.
    pub(crate) fn create(path: &Path, schema: SchemaRef) -> Result<Self> {
        let f = create_new(path)?;
        let props = props(&schema);
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(WRITE_BUFFER, f),
            schema,
            Some(props),
        )
        .map_err(|e| pq_err(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer,
        })
    }

    /// Appends one batch.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).map_err(|e| pq_err(&self.path, e))
    }

    /// Writes the footer and flushes the file.
    pub(crate) fn finish(self) -> Result<()> {
        let path = self.path;
        let mut inner = self.writer.into_inner().map_err(|e| pq_err(&path, e))?;
        inner.flush().map_err(|e| io_err(&path, e))
    }
}

/// The Arrow type of the index's customer ids.
pub(crate) fn id_type(kind: IdKind) -> DataType {
    match kind {
        IdKind::Int => DataType::Int64,
        IdKind::Str => DataType::Utf8,
    }
}

/// The schema of `members/<code>.parquet`.
pub(crate) fn members_schema(kind: IdKind) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "customer_id",
        id_type(kind),
        false,
    )]))
}

/// Writes `members/<code>.parquet` for `rows`, a batch of ids at a time:
/// a segment of millions never holds all its ids (or its file) in memory.
pub(crate) fn write_members_parquet(index: &Index, rows: &Bitmap, path: &Path) -> Result<()> {
    write_members_parquet_batched(index, rows, path, MEMBER_BATCH)
}

/// [`write_members_parquet`] with `batch` integer ids per record batch.
fn write_members_parquet_batched(
    index: &Index,
    rows: &Bitmap,
    path: &Path,
    batch: usize,
) -> Result<()> {
    let schema = members_schema(index.customer_id_kind());
    let mut out = ParquetStream::create(path, schema.clone())?;
    for_each_id_batch(index, rows, batch, |ids| {
        let b = RecordBatch::try_new(schema.clone(), vec![ids]).map_err(|e| pq_err(path, e))?;
        out.write(&b)
    })?;
    out.finish()
}

/// Calls `emit` with the external ids of `rows`, ascending, as Arrow
/// arrays of the index's id type: `batch` integers (or a block of
/// strings) at a time.
fn for_each_id_batch(
    index: &Index,
    rows: &Bitmap,
    batch: usize,
    mut emit: impl FnMut(ArrayRef) -> Result<()>,
) -> Result<()> {
    match index.customer_id_kind() {
        IdKind::Int => {
            let mut ids: Vec<i64> = Vec::with_capacity(batch);
            segdex_bitmap::for_each_block(rows, |block| -> Result<()> {
                index.extend_int_ids(block, &mut ids)?;
                if ids.len() >= batch {
                    let full = std::mem::replace(&mut ids, Vec::with_capacity(batch));
                    emit(Arc::new(Int64Array::from(full)))?;
                }
                Ok(())
            })?;
            if !ids.is_empty() {
                emit(Arc::new(Int64Array::from(ids)))?;
            }
            Ok(())
        }
        IdKind::Str => segdex_bitmap::for_each_block(rows, |block| {
            emit(string_ids(&index.external_ids_of(block)?))
        }),
    }
}

/// Member ids per record batch of a member file (256 KB of int64).
const MEMBER_BATCH: usize = 32 << 10;

/// String external ids as an Arrow array.
fn string_ids(ids: &[ExternalId]) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(ids.iter().map(
        |id| match id {
            ExternalId::Str(s) => s.as_str(),
            ExternalId::Int(_) => "",
        },
    )))
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The schema of an events file.
pub(crate) fn events_schema(kind: IdKind) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("code", DataType::Utf8, false),
        Field::new("customer_id", id_type(kind), false),
        Field::new("change", DataType::Utf8, false),
        Field::new("as_of", ts_type(), false),
    ]))
}

/// One segment's events: its code, who entered, who left.
pub(crate) type SegmentEvents<'a> = (&'a str, &'a Bitmap, &'a Bitmap);

/// Rows of events per row group, about: consecutive segments' events
/// share a row group until it holds this many (one segment's are never
/// split).
const EVENT_ROW_GROUP: u64 = 1 << 20;

/// Writes the events file `path`: each segment's `entered` rows, then its
/// `left` rows, segment after segment. Row groups are encoded in parallel,
/// a few per thread at a time (a first pass has billions of events; they
/// are never all in memory, encoded or not), and appended in order. The
/// file is new (as [`write_file`]) and not synced.
pub(crate) fn write_events_file(
    path: &Path,
    index: &Index,
    segments: &[SegmentEvents<'_>],
    as_of_us: i64,
) -> Result<()> {
    write_events_grouped(path, index, segments, as_of_us, EVENT_ROW_GROUP)
}

/// [`write_events_file`] with row groups of about `group_rows` rows.
fn write_events_grouped(
    path: &Path,
    index: &Index,
    segments: &[SegmentEvents<'_>],
    as_of_us: i64,
    group_rows: u64,
) -> Result<()> {
    let schema = events_schema(index.customer_id_kind());
    let f = create_new(path)?;
    let props = props(&schema);
    let writer = ArrowWriter::try_new(
        BufWriter::with_capacity(WRITE_BUFFER, f),
        schema.clone(),
        Some(props),
    )
    .map_err(|e| pq_err(path, e))?;
    let (mut file, factory) = writer
        .into_serialized_writer()
        .map_err(|e| pq_err(path, e))?;
    let groups = event_groups(segments, group_rows);
    let wave = 2 * rayon::current_num_threads().max(1);
    for (w, wave_groups) in groups.chunks(wave).enumerate() {
        let encoded: Vec<Vec<ArrowColumnChunk>> = wave_groups
            .par_iter()
            .enumerate()
            .map(|(k, range)| {
                let mut cols = factory
                    .create_column_writers(w * wave + k)
                    .map_err(|e| pq_err(path, e))?;
                for &(code, entered, left) in &segments[range.clone()] {
                    let rows = (entered, left);
                    for_each_event_batch(path, index, &schema, code, rows, as_of_us, |b| {
                        for ((col, field), arr) in
                            cols.iter_mut().zip(schema.fields()).zip(b.columns())
                        {
                            for leaf in compute_leaves(field, arr).map_err(|e| pq_err(path, e))? {
                                col.write(&leaf).map_err(|e| pq_err(path, e))?;
                            }
                        }
                        Ok(())
                    })?;
                }
                cols.into_iter()
                    .map(|c| c.close().map_err(|e| pq_err(path, e)))
                    .collect()
            })
            .collect::<Result<_>>()?;
        for chunks in encoded {
            let mut rg = file.next_row_group().map_err(|e| pq_err(path, e))?;
            for c in chunks {
                c.append_to_row_group(&mut rg)
                    .map_err(|e| pq_err(path, e))?;
            }
            rg.close().map_err(|e| pq_err(path, e))?;
        }
    }
    let mut inner = file.into_inner().map_err(|e| pq_err(path, e))?;
    inner.flush().map_err(|e| io_err(path, e))
}

/// Consecutive runs of `segments` with events, about `group_rows` rows
/// each: the row groups of the events file.
fn event_groups(segments: &[SegmentEvents<'_>], group_rows: u64) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut rows) = (0, 0u64);
    for (i, (_, entered, left)) in segments.iter().enumerate() {
        rows += entered.len() + left.len();
        if rows >= group_rows {
            groups.push(start..i + 1);
            (start, rows) = (i + 1, 0);
        }
    }
    if rows > 0 {
        groups.push(start..segments.len());
    }
    groups
}

/// Calls `emit` with one segment's event rows, `entered` then `left`, a
/// batch of ids at a time.
fn for_each_event_batch(
    path: &Path,
    index: &Index,
    schema: &SchemaRef,
    code: &str,
    (entered, left): (&Bitmap, &Bitmap),
    as_of_us: i64,
    mut emit: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<()> {
    for (rows, change) in [(entered, "entered"), (left, "left")] {
        for_each_id_batch(index, rows, MEMBER_BATCH, |ids| {
            let n = ids.len();
            let b = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from_iter_values(std::iter::repeat_n(code, n))),
                    ids,
                    Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                        change, n,
                    ))),
                    Arc::new(
                        TimestampMicrosecondArray::from(vec![as_of_us; n]).with_timezone("UTC"),
                    ),
                ],
            )
            .map_err(|e| pq_err(path, e))?;
            emit(&b)
        })?;
    }
    Ok(())
}

/// The schema of history.parquet.
pub(crate) fn history_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("code", DataType::Utf8, false),
        Field::new("as_of", ts_type(), false),
        Field::new("size", DataType::Int64, false),
        Field::new("entered", DataType::Int64, false),
        Field::new("left", DataType::Int64, false),
        Field::new("seconds", DataType::Float64, false),
        Field::new("pass", DataType::Int64, false),
    ]))
}

/// History rows as one batch.
pub(crate) fn history_batch(rows: &[crate::HistoryRow], path: &Path) -> Result<RecordBatch> {
    let i64s = |f: &dyn Fn(&crate::HistoryRow) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(rows.iter().map(f)))
    };
    RecordBatch::try_new(
        history_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.code.as_str()),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.as_of_us))
                    .with_timezone("UTC"),
            ),
            i64s(&|r| r.size as i64),
            i64s(&|r| r.entered as i64),
            i64s(&|r| r.left as i64),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.seconds),
            )),
            i64s(&|r| r.pass as i64),
        ],
    )
    .map_err(|e| pq_err(path, e))
}

/// Reads every batch of a Parquet file.
pub(crate) fn read_batches(path: &Path) -> Result<Vec<RecordBatch>> {
    let f = File::open(path).map_err(|e| io_err(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| pq_err(path, e))?
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| pq_err(path, e))?;
    reader.map(|b| b.map_err(|e| pq_err(path, e))).collect()
}

/// Column `name` of `batch` as `T`, or an error naming the file.
pub(crate) fn column<'b, T: 'static>(
    batch: &'b RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'b T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            pq_err(
                path,
                format!("column `{name}` is missing or has an unexpected type"),
            )
        })
}

/// Reads history.parquet.
pub(crate) fn read_history(path: &Path) -> Result<Vec<crate::HistoryRow>> {
    let mut out = Vec::new();
    for b in read_batches(path)? {
        let code = column::<StringArray>(&b, "code", path)?;
        let as_of = column::<TimestampMicrosecondArray>(&b, "as_of", path)?;
        let size = column::<Int64Array>(&b, "size", path)?;
        let entered = column::<Int64Array>(&b, "entered", path)?;
        let left = column::<Int64Array>(&b, "left", path)?;
        let seconds = column::<Float64Array>(&b, "seconds", path)?;
        let pass = column::<Int64Array>(&b, "pass", path)?;
        for i in 0..b.num_rows() {
            out.push(crate::HistoryRow {
                pass: pass.value(i) as u64,
                code: code.value(i).to_string(),
                as_of_us: as_of.value(i),
                size: size.value(i) as u64,
                entered: entered.value(i) as u64,
                left: left.value(i) as u64,
                seconds: seconds.value(i),
            });
        }
    }
    Ok(out)
}

/// Reads an events file.
pub(crate) fn read_events(path: &Path) -> Result<Vec<crate::Event>> {
    let mut out = Vec::new();
    for b in read_batches(path)? {
        let code = column::<StringArray>(&b, "code", path)?;
        let change = column::<StringArray>(&b, "change", path)?;
        let as_of = column::<TimestampMicrosecondArray>(&b, "as_of", path)?;
        let ids = b
            .column_by_name("customer_id")
            .ok_or_else(|| pq_err(path, "column `customer_id` is missing"))?;
        let id_at = |i: usize| -> Result<ExternalId> {
            if let Some(a) = ids.as_any().downcast_ref::<Int64Array>() {
                Ok(ExternalId::Int(a.value(i)))
            } else if let Some(a) = ids.as_any().downcast_ref::<StringArray>() {
                Ok(ExternalId::Str(a.value(i).to_string()))
            } else {
                Err(pq_err(path, "column `customer_id` has an unexpected type"))
            }
        };
        for i in 0..b.num_rows() {
            let change = match change.value(i) {
                "entered" => crate::Change::Entered,
                "left" => crate::Change::Left,
                other => {
                    return Err(pq_err(path, format!("unknown change `{other}`")));
                }
            };
            out.push(crate::Event {
                code: code.value(i).to_string(),
                customer_id: id_at(i)?,
                change,
                as_of_us: as_of.value(i),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Change;

    /// A generated index of 3000 customers under `dir`.
    fn small_index(dir: &Path) -> Index {
        let (data, idx) = (dir.join("data"), dir.join("index"));
        let opts = segdex_datagen::GenerateOptions {
            customers: 3000,
            seed: 7,
            ..Default::default()
        };
        segdex_datagen::generate(&opts, &data, &|_, _| {}).unwrap();
        let build = segdex_index::BuildOptions {
            timezone: "UTC".into(),
            strict: false,
        };
        segdex_index::build_index(&data, None, &idx, &build, &|_| {}).unwrap();
        Index::open(&idx).unwrap()
    }

    fn int_id(index: &Index, row: u32) -> i64 {
        match index.external_id(row).unwrap() {
            ExternalId::Int(i) => i,
            ExternalId::Str(s) => panic!("generated ids are integers, got {s}"),
        }
    }

    #[test]
    fn member_files_in_any_number_of_batches_hold_each_id_once_ascending() {
        let dir = tempfile::tempdir().unwrap();
        let index = small_index(dir.path());
        // Two rows of three, and a run: several blocks' and batches' worth.
        let mut rows: Bitmap = (0..index.customers()).filter(|r| r % 3 != 1).collect();
        rows.insert_range(1000..1500);
        let want: Vec<i64> = rows.iter().map(|r| int_id(&index, r)).collect();
        assert!(want.windows(2).all(|w| w[0] < w[1]), "rows are in id order");
        for batch in [1, 7, 1000, MEMBER_BATCH] {
            let path = dir.path().join(format!("members-{batch}.parquet"));
            write_members_parquet_batched(&index, &rows, &path, batch).unwrap();
            let batches = read_batches(&path).unwrap();
            let got: Vec<i64> = batches
                .iter()
                .flat_map(|b| {
                    let col = b.column_by_name("customer_id").unwrap();
                    let a = col.as_any().downcast_ref::<Int64Array>().unwrap();
                    a.values().to_vec()
                })
                .collect();
            assert_eq!(got, want, "batch {batch}");
        }
        // No members: a valid file with no rows.
        let path = dir.path().join("members-empty.parquet");
        write_members_parquet(&index, &Bitmap::new(), &path).unwrap();
        let rows: usize = read_batches(&path)
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(rows, 0);
    }

    #[test]
    fn events_encoded_in_parallel_row_groups_keep_segment_order() {
        let dir = tempfile::tempdir().unwrap();
        let index = small_index(dir.path());
        let n = index.customers();
        // Segments of every shape: entered only, left only, both, large,
        // tiny; some with no events at all are not passed (as a pass does).
        let sets: Vec<(String, Bitmap, Bitmap)> = (0..40u32)
            .map(|k| {
                let entered: Bitmap = (0..n).filter(|r| (r + k) % (k + 2) == 0).collect();
                let left: Bitmap = match k % 3 {
                    0 => Bitmap::new(),
                    1 => (k..k + 5).collect(),
                    _ => (0..n).filter(|r| r % 97 == k).collect(),
                };
                let entered = if k % 5 == 4 { Bitmap::new() } else { entered };
                (format!("seg_{k:02}"), entered, left)
            })
            .filter(|(_, e, l)| !e.is_empty() || !l.is_empty())
            .collect();
        let segments: Vec<SegmentEvents<'_>> =
            sets.iter().map(|(c, e, l)| (c.as_str(), e, l)).collect();
        let as_of = 1_763_000_000_000_000;
        let want: Vec<(String, i64, Change)> = sets
            .iter()
            .flat_map(|(c, e, l)| {
                let entered = e
                    .iter()
                    .map(|r| (c.clone(), int_id(&index, r), Change::Entered));
                let left = l
                    .iter()
                    .map(|r| (c.clone(), int_id(&index, r), Change::Left));
                entered.chain(left).collect::<Vec<_>>()
            })
            .collect();
        for group_rows in [1, 300, 5000, EVENT_ROW_GROUP] {
            let path = dir.path().join(format!("events-{group_rows}.parquet"));
            write_events_grouped(&path, &index, &segments, as_of, group_rows).unwrap();
            let got: Vec<(String, i64, Change)> = read_events(&path)
                .unwrap()
                .into_iter()
                .map(|e| {
                    assert_eq!(e.as_of_us, as_of);
                    let id = match e.customer_id {
                        ExternalId::Int(i) => i,
                        ExternalId::Str(s) => panic!("{s}"),
                    };
                    (e.code, id, e.change)
                })
                .collect();
            assert_eq!(got.len(), want.len(), "rows with groups of {group_rows}");
            assert!(got == want, "order with groups of {group_rows}");
            let file = File::open(&path).unwrap();
            let meta = parquet::file::reader::SerializedFileReader::new(file).unwrap();
            let groups = parquet::file::reader::FileReader::metadata(&meta).num_row_groups();
            let expect = event_groups(&segments, group_rows).len();
            assert_eq!(groups, expect, "row groups of {group_rows}");
            if group_rows == 1 {
                // One segment a row group: several waves of parallel groups.
                assert_eq!(groups, segments.len());
                assert!(groups > 2 * rayon::current_num_threads());
            }
        }
        // No events: a valid file with no rows.
        let path = dir.path().join("events-none.parquet");
        write_events_file(&path, &index, &[], as_of).unwrap();
        assert!(read_events(&path).unwrap().is_empty());
    }
}
