//! The state directory: reading the committed generation, the lock, the
//! commit by symlink rename, and clean-up of stale generations (see the
//! crate docs for the layout and the argument).

use crate::files::{fsync_dir, remove_tree};
use crate::{RecalcError, Result, io_err};
use segdex_bitmap::Bitmap;
use segdex_index::{ExternalId, IdKind, Index};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The `format` string of a state.json.
pub const STATE_FORMAT: &str = "segdex-recalc-state";
/// Bumped whenever the state layout changes; other versions are refused.
pub const STATE_FORMAT_VERSION: u32 = 1;

/// The symlink naming the committed generation.
pub(crate) const CURRENT: &str = "current";
/// Generations live here.
pub(crate) const GEN: &str = "gen";
/// The documented paths: fixed symlinks through `current`.
pub(crate) const LINKS: [(&str, &str); 4] = [
    ("state.json", "current/state.json"),
    ("members", "current/members"),
    ("events", "current/events"),
    ("history.parquet", "current/history.parquet"),
];

/// What a state directory is tied to: the index's customer id dictionary
/// (members are stored as its row ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexIdentity {
    /// [`Index::customer_ids_fingerprint`], 16 hex digits.
    pub customer_ids_fingerprint: String,
    /// Number of customers.
    pub customers: u32,
    /// int64 or string ids.
    pub id_kind: IdKind,
    /// The index's time zone (informative: not part of the identity).
    pub timezone: String,
    /// The index directory of the first pass (informative).
    pub index_dir: String,
}

impl IndexIdentity {
    /// The identity of `index`.
    pub fn of(index: &Index) -> Result<Self> {
        Ok(Self {
            customer_ids_fingerprint: format!("{:016x}", index.customer_ids_fingerprint()?),
            customers: index.customers(),
            id_kind: index.customer_id_kind(),
            timezone: index.zone().name().to_string(),
            index_dir: std::fs::canonicalize(index.dir())
                .unwrap_or_else(|_| index.dir().to_path_buf())
                .display()
                .to_string(),
        })
    }

    /// Whether row ids of the two indexes name the same customers.
    pub fn same_rows(&self, other: &Self) -> bool {
        self.customer_ids_fingerprint == other.customer_ids_fingerprint
            && self.customers == other.customers
            && self.id_kind == other.id_kind
    }
}

/// `dynamic` or `static`, as recorded in state.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentMode {
    /// Recomputed at every pass.
    Dynamic,
    /// Formed once, then frozen.
    Static,
}

/// One committed pass.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PassRecord {
    /// 1, 2, ...
    pub pass: u64,
    /// The as-of as given (`YYYY-MM-DD`) or as a UTC RFC 3339 instant.
    pub as_of: String,
    /// The clip instant, µs since the epoch (the `as_of` column).
    pub as_of_us: i64,
    /// D, the local day of the as-of (`YYYY-MM-DD`).
    pub as_of_day: String,
    /// Wall-clock time the pass started (UTC, RFC 3339).
    pub started_at: String,
    /// Seconds the pass took.
    pub seconds: f64,
    /// Segments recomputed or formed.
    pub recalculated: u64,
    /// Static segments kept frozen.
    pub frozen: u64,
    /// Inactive segments skipped.
    pub inactive: u64,
    /// Invalid segments and their dependents, skipped.
    pub errors: u64,
    /// The events file, relative to the generation (`events/pass-000001.parquet`).
    pub events_file: String,
    /// Whether identical sub-conditions were shared.
    pub sharing: bool,
}

/// A segment's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// The mode of its last recalculation.
    pub mode: SegmentMode,
    /// A static segment whose members are frozen.
    pub frozen: bool,
    /// Members now.
    pub size: u64,
    /// The last pass that recalculated it (or kept it frozen).
    pub last_pass: u64,
    /// The pass that formed (froze) it, for a frozen static segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formed_pass: Option<u64>,
}

/// The content of a generation's state.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StateDoc {
    pub format: String,
    pub format_version: u32,
    pub index: IndexIdentity,
    /// This generation's directory name under `gen/`.
    pub generation: String,
    /// The generation before it (kept one more pass).
    #[serde(default)]
    pub previous_generation: Option<String>,
    pub passes: Vec<PassRecord>,
    pub segments: BTreeMap<String, SegmentRecord>,
}

/// Entered or left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// Became a member since the previous pass.
    Entered,
    /// Stopped being a member since the previous pass.
    Left,
}

/// One row of an events file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The segment.
    pub code: String,
    /// The customer.
    pub customer_id: ExternalId,
    /// Entered or left.
    pub change: Change,
    /// The pass's as-of (µs since the epoch, UTC).
    pub as_of_us: i64,
}

/// The committed state of a state directory (its latest pass), read-only.
#[derive(Debug, Clone)]
pub struct State {
    dir: PathBuf,
    gen_dir: PathBuf,
    doc: StateDoc,
}

pub(crate) fn state_err(dir: &Path, message: impl Into<String>) -> RecalcError {
    RecalcError::State {
        dir: dir.to_path_buf(),
        message: message.into(),
    }
}

fn is_gen_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

impl State {
    /// Opens the latest committed state of `dir` for `index`: refused when
    /// `dir` holds no state yet, was made from an index with other
    /// customer rows, or has another format version.
    pub fn open(dir: &Path, index: &Index) -> Result<Self> {
        let s = Self::open_any(dir)?;
        s.check_index(&IndexIdentity::of(index)?)?;
        Ok(s)
    }

    /// Opens the latest committed state of `dir` without an index (for
    /// the history, which holds no row ids).
    pub fn open_any(dir: &Path) -> Result<Self> {
        Self::read(dir)?.ok_or_else(|| {
            state_err(
                dir,
                "holds no recalculation yet (no `current`); run `segdex recalc` first",
            )
        })
    }

    /// The committed state of `dir`, or `None` when no pass has been
    /// committed. Checks that `dir` is a state directory of this format.
    pub(crate) fn read(dir: &Path) -> Result<Option<Self>> {
        if !dir.exists() {
            return Ok(None);
        }
        if !dir.is_dir() {
            return Err(state_err(dir, "is not a directory"));
        }
        let current = dir.join(CURRENT);
        let target = match std::fs::read_link(&current) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Not a state yet: it must not hold other things at our
                // documented paths.
                for (name, _) in LINKS {
                    let p = dir.join(name);
                    if let Ok(m) = std::fs::symlink_metadata(&p)
                        && !m.file_type().is_symlink()
                    {
                        return Err(state_err(
                            dir,
                            format!(
                                "`{name}` exists but this is not a segdex state directory (no `current`); use a new or empty directory"
                            ),
                        ));
                    }
                }
                return Ok(None);
            }
            Err(e) => {
                return Err(state_err(
                    dir,
                    format!(
                        "`current` is not a link to a generation ({e}); not a segdex state directory"
                    ),
                ));
            }
        };
        let target_s = target.to_string_lossy().to_string();
        let gen_name = target_s
            .strip_prefix("gen/")
            .filter(|g| is_gen_name(g))
            .ok_or_else(|| {
                state_err(
                    dir,
                    format!("`current` points to `{target_s}`, not to a generation under gen/"),
                )
            })?;
        let gen_dir = dir.join(GEN).join(gen_name);
        let sj = gen_dir.join("state.json");
        let text = std::fs::read(&sj).map_err(|e| {
            state_err(
                dir,
                format!("cannot read {} ({e}): the state is damaged", sj.display()),
            )
        })?;
        let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            state_err(
                dir,
                format!(
                    "{} is not valid JSON ({e}): the state is damaged",
                    sj.display()
                ),
            )
        })?;
        let format = v.get("format").and_then(|f| f.as_str()).unwrap_or("");
        if format != STATE_FORMAT {
            return Err(state_err(
                dir,
                format!("state.json describes `{format}`, not a segdex recalculation state"),
            ));
        }
        let version = v.get("format_version").and_then(|f| f.as_u64());
        if version != Some(u64::from(STATE_FORMAT_VERSION)) {
            return Err(state_err(
                dir,
                format!(
                    "state format version {} is not the version this segdex reads ({STATE_FORMAT_VERSION}); use a new state directory",
                    version.map_or("(missing)".to_string(), |v| v.to_string())
                ),
            ));
        }
        let doc: StateDoc = serde_json::from_value(v).map_err(|e| {
            state_err(
                dir,
                format!(
                    "{} is not a valid state ({e}): the state is damaged",
                    sj.display()
                ),
            )
        })?;
        if doc.generation != gen_name {
            return Err(state_err(
                dir,
                format!(
                    "generation {gen_name} describes itself as {}: the state is damaged",
                    doc.generation
                ),
            ));
        }
        Ok(Some(Self {
            dir: dir.to_path_buf(),
            gen_dir,
            doc,
        }))
    }

    /// Refuses a state made from an index whose row ids name other
    /// customers.
    pub(crate) fn check_index(&self, id: &IndexIdentity) -> Result<()> {
        let mine = &self.doc.index;
        if mine.same_rows(id) {
            return Ok(());
        }
        Err(state_err(
            &self.dir,
            format!(
                "was made from another index ({} customers, id fingerprint {}, first used with {}); this index has {} customers, id fingerprint {}. Members are stored as row ids, so a state belongs to one customer id dictionary: use a new --state directory, or the index this state was made from",
                mine.customers,
                mine.customer_ids_fingerprint,
                mine.index_dir,
                id.customers,
                id.customer_ids_fingerprint
            ),
        ))
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The committed generation's directory (`DIR/gen/<n>`), which the
    /// documented paths resolve to.
    pub fn generation_dir(&self) -> &Path {
        &self.gen_dir
    }

    pub(crate) fn doc(&self) -> &StateDoc {
        &self.doc
    }

    /// The index this state belongs to.
    pub fn index_identity(&self) -> &IndexIdentity {
        &self.doc.index
    }

    /// Every committed pass, oldest first.
    pub fn passes(&self) -> &[PassRecord] {
        &self.doc.passes
    }

    /// Every segment the state holds members of, by code.
    pub fn segments(&self) -> &BTreeMap<String, SegmentRecord> {
        &self.doc.segments
    }

    /// `members/<code>.roaring` inside the committed generation.
    pub fn roaring_path(&self, code: &str) -> PathBuf {
        self.gen_dir.join("members").join(format!("{code}.roaring"))
    }

    /// `members/<code>.parquet` inside the committed generation.
    pub fn parquet_path(&self, code: &str) -> PathBuf {
        self.gen_dir.join("members").join(format!("{code}.parquet"))
    }

    /// The latest members of segment `code`, as row ids of the index.
    pub fn members(&self, code: &str) -> Result<Bitmap> {
        if !self.doc.segments.contains_key(code) {
            return Err(RecalcError::NoMembers {
                dir: self.dir.clone(),
                code: code.to_string(),
                reason: "no pass has recalculated it (unknown code, inactive, or invalid)".into(),
            });
        }
        self.read_members(code)
    }

    pub(crate) fn read_members(&self, code: &str) -> Result<Bitmap> {
        let p = self.roaring_path(code);
        let bytes = std::fs::read(&p).map_err(|e| io_err(&p, e))?;
        let b = segdex_bitmap::from_portable_bytes(&bytes)
            .map_err(|e| io_err(&p, format!("not a portable roaring bitmap ({e})")))?;
        if b.max().is_some_and(|m| m >= self.doc.index.customers) {
            return Err(io_err(&p, "holds a row id beyond the index's customers"));
        }
        Ok(b)
    }

    /// The size history: one row per segment per pass, oldest first.
    pub fn history(&self) -> Result<Vec<crate::HistoryRow>> {
        let p = self.gen_dir.join("history.parquet");
        crate::files::read_history(&p)
    }

    /// The events of pass `pass` (who entered and left each segment).
    pub fn events(&self, pass: u64) -> Result<Vec<Event>> {
        let rec = self
            .doc
            .passes
            .iter()
            .find(|p| p.pass == pass)
            .ok_or_else(|| state_err(&self.dir, format!("has no pass {pass}")))?;
        crate::files::read_events(&self.gen_dir.join(&rec.events_file))
    }
}

/// An exclusive `flock` on `DIR/.lock`, held for a pass.
pub(crate) struct DirLock {
    _file: File,
}

pub(crate) fn lock(dir: &Path) -> Result<DirLock> {
    use std::os::fd::AsRawFd;
    let p = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| io_err(&p, e))?;
    // SAFETY: flock(2) on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::WouldBlock {
            return Err(state_err(
                dir,
                "another recalculation is running on it (DIR/.lock is held); wait for it to finish",
            ));
        }
        return Err(io_err(&p, e));
    }
    Ok(DirLock { _file: file })
}

/// Removes what a crashed pass may have left: temporary links, and
/// generations other than `keep`.
pub(crate) fn clean_stale(dir: &Path, keep: &[&str]) -> Result<()> {
    for name in std::iter::once(CURRENT).chain(LINKS.iter().map(|(n, _)| *n)) {
        let tmp = dir.join(format!(".{name}.tmp"));
        if std::fs::symlink_metadata(&tmp).is_ok() {
            std::fs::remove_file(&tmp).map_err(|e| io_err(&tmp, e))?;
        }
    }
    let gen_root = dir.join(GEN);
    let entries = match std::fs::read_dir(&gen_root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(&gen_root, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_err(&gen_root, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if is_gen_name(&name) && !keep.contains(&name.as_str()) {
            remove_tree(&entry.path())?;
        }
    }
    Ok(())
}

/// Points `link` at `target` (a relative symlink), atomically: a temporary
/// link renamed over it. Returns whether anything changed.
fn set_link(dir: &Path, name: &str, target: &str) -> Result<bool> {
    let link = dir.join(name);
    if std::fs::read_link(&link).is_ok_and(|t| t == Path::new(target)) {
        return Ok(false);
    }
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, &link).map_err(|e| io_err(&link, e))?;
    Ok(true)
}

/// Commits generation `gen_name` (complete and durable): the documented
/// links (idempotent), then the one rename that switches `current`.
pub(crate) fn commit(dir: &Path, gen_name: &str) -> Result<()> {
    let mut changed = false;
    for (name, target) in LINKS {
        changed |= set_link(dir, name, target)?;
    }
    if changed {
        fsync_dir(dir)?;
    }
    let target = format!("{GEN}/{gen_name}");
    let tmp = dir.join(format!(".{CURRENT}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp).map_err(|e| io_err(&tmp, e))?;
    crate::crash::point("before-commit");
    let current = dir.join(CURRENT);
    std::fs::rename(&tmp, &current).map_err(|e| io_err(&current, e))?;
    fsync_dir(dir)?;
    crate::crash::point("after-commit");
    Ok(())
}

/// The bytes of every file at the documented paths of a state directory
/// (`state.json`, `history.parquet`, `members/*`, `events/*`), following
/// the links, keyed by relative path; missing ones are absent. What a
/// reader of the state sees — tests compare it across crashes.
pub fn visible_files(
    state: &std::path::Path,
) -> std::io::Result<std::collections::BTreeMap<String, Vec<u8>>> {
    let mut out = std::collections::BTreeMap::new();
    for f in ["state.json", "history.parquet"] {
        if let Ok(b) = std::fs::read(state.join(f)) {
            out.insert(f.to_string(), b);
        }
    }
    for d in ["members", "events"] {
        if let Ok(rd) = std::fs::read_dir(state.join(d)) {
            for e in rd {
                let e = e?;
                out.insert(
                    format!("{d}/{}", e.file_name().to_string_lossy()),
                    std::fs::read(e.path())?,
                );
            }
        }
    }
    Ok(out)
}
