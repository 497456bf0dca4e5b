//! One recalculation pass: evaluate, diff against the previous members,
//! write a new generation, commit.

use crate::files::{self, create_dir, link_or_copy, remove_tree, sync_all, write_file};
use crate::state::{
    self, GEN, IndexIdentity, PassRecord, STATE_FORMAT, STATE_FORMAT_VERSION, SegmentMode,
    SegmentRecord, State, StateDoc,
};
use crate::{HistoryRow, Result, crash, io_err};
use rayon::prelude::*;
use segdex_bitmap::Bitmap;
use segdex_index::Index;
use segdex_index::time::date_of;
use segdex_query::lang::Mode;
use segdex_query::{AsOf, Catalog, Evaluator, QueryError, SegmentError, SharingStats};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How to run a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassOptions {
    /// Compute identical sub-conditions across segments once (default
    /// true; false to measure what sharing saves).
    pub sharing: bool,
}

impl Default for PassOptions {
    fn default() -> Self {
        Self { sharing: true }
    }
}

/// The stage a pass is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Evaluating segments and writing their member files (`done` of
    /// `total` segments).
    Evaluating,
    /// Linking frozen segments' member files (`done` of `total`).
    Writing,
    /// Writing events, history and state, syncing and committing.
    Committing,
}

/// What a progress callback is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The stage.
    pub stage: Stage,
    /// Units done in this stage.
    pub done: u64,
    /// Units in this stage.
    pub total: u64,
}

/// What a pass did with a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A dynamic segment, recomputed.
    Recomputed,
    /// A static segment, formed and frozen by this pass.
    Formed,
    /// A static segment, kept frozen.
    Frozen,
}

/// One recalculated segment of a pass.
#[derive(Debug, Clone)]
pub struct SegmentReport {
    /// The segment.
    pub code: String,
    /// What the pass did.
    pub outcome: Outcome,
    /// Members after the pass.
    pub size: u64,
    /// Members that were not members after the previous pass.
    pub entered: u64,
    /// Former members that are no longer.
    pub left: u64,
    /// Seconds its evaluation took (0 for a frozen segment).
    pub seconds: f64,
}

/// What a committed pass did.
#[derive(Debug, Clone)]
pub struct PassReport {
    /// The pass number (1 for the first).
    pub pass: u64,
    /// The as-of, as recorded ([`as_of_text`]).
    pub as_of: String,
    /// Active, valid segments, in definition order.
    pub segments: Vec<SegmentReport>,
    /// Inactive segments (skipped).
    pub inactive: Vec<String>,
    /// Invalid segments and the segments skipped because they reference
    /// one, with code and JSON path.
    pub problems: Vec<SegmentError>,
    /// What sharing identical sub-conditions saved.
    pub sharing: SharingStats,
    /// Seconds evaluating, each evaluated segment's member files written as
    /// soon as it is done (so the disk writes while the cores evaluate).
    pub evaluate_seconds: f64,
    /// Seconds writing the rest of the new generation: frozen and
    /// unrecalculated segments' files (linked), events, history,
    /// state.json.
    pub write_seconds: f64,
    /// Seconds making it durable (fsync / syncfs) and committing.
    pub sync_seconds: f64,
    /// Seconds deleting the generation before the previous one.
    pub cleanup_seconds: f64,
    /// Seconds of the whole pass.
    pub seconds: f64,
    /// The committed generation directory.
    pub generation_dir: PathBuf,
}

/// The as-of as recorded: `YYYY-MM-DD` for a whole day, else the clip
/// instant as a UTC RFC 3339 timestamp.
pub fn as_of_text(as_of: &AsOf) -> String {
    if as_of.whole_day {
        date_of(as_of.day).format("%Y-%m-%d").to_string()
    } else {
        chrono::DateTime::from_timestamp_nanos(as_of.clip_ns)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    }
}

/// The `as_of` column value: the clip instant in µs since the epoch
/// (floored; for a whole day, its last microsecond).
pub fn as_of_micros(as_of: &AsOf) -> i64 {
    as_of.clip_ns.div_euclid(1000)
}

/// A segment's members (`None` once released, see [`Computed`]), their
/// count and the seconds its evaluation took, or why not.
type Evaluated = std::result::Result<(Option<Arc<Bitmap>>, u64, f64), QueryError>;

/// A segment's new members and how they were obtained.
struct Computed {
    /// `None` when released during evaluation: the member files were
    /// written, who entered is in the segment's [`Diff`], and no segment
    /// references it. Kept otherwise (first passes, references, frozen).
    members: Option<Arc<Bitmap>>,
    size: u64,
    outcome: Outcome,
    seconds: f64,
}

/// Runs one recalculation pass of `defs` as of `as_of` against `index`,
/// and commits it atomically to the state directory `state_dir` (created
/// when missing). Invalid segments are reported in
/// [`PassReport::problems`], not errors; an error means nothing was
/// committed and the previous state is as it was. `progress` is called
/// from worker threads as the pass advances.
pub fn run_pass(
    index: &Index,
    defs: &crate::Definitions,
    as_of: AsOf,
    state_dir: &Path,
    opts: &PassOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<PassReport> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let identity = IndexIdentity::of(index)?;
    // Refuse a foreign directory before creating the lock file in it.
    if let Some(p) = State::read(state_dir)? {
        p.check_index(&identity)?;
    }
    create_dir(state_dir)?;
    let _lock = state::lock(state_dir)?;
    let prev = State::read(state_dir)?;
    if let Some(p) = &prev {
        p.check_index(&identity)?;
    }
    let keep: Vec<&str> = match &prev {
        Some(p) => std::iter::once(p.doc().generation.as_str())
            .chain(p.doc().previous_generation.as_deref())
            .collect(),
        None => Vec::new(),
    };
    state::clean_stale(state_dir, &keep)?;
    // The previous generation is not read by this pass: it is deleted
    // while the cores evaluate (unlinking ten thousand files is kernel
    // work that took 3-5 s after the commit at 10M), not after.
    let dropping = prev
        .as_ref()
        .and_then(|p| p.doc().previous_generation.clone())
        .map(|g| {
            let dir = state_dir.join(GEN).join(g);
            std::thread::spawn(move || remove_tree(&dir))
        });
    let pass_no = prev
        .as_ref()
        .and_then(|p| p.passes().last())
        .map_or(1, |p| p.pass + 1);
    let prev_records: BTreeMap<String, SegmentRecord> = prev
        .as_ref()
        .map(|p| p.segments().clone())
        .unwrap_or_default();

    let catalog = defs.catalog();
    let mut problems: Vec<SegmentError> = defs.problems().to_vec();

    // Frozen static segments keep their members, also for references.
    let frozen_codes: Vec<&str> = catalog
        .segments()
        .iter()
        .filter(|s| {
            s.mode == Mode::Static
                && prev_records
                    .get(&s.code)
                    .is_some_and(|r| r.mode == SegmentMode::Static && r.frozen)
        })
        .map(|s| s.code.as_str())
        .collect();
    let frozen: HashMap<&str, Arc<Bitmap>> = frozen_codes
        .par_iter()
        .map(|&c| {
            let p = prev.as_ref().expect("frozen records come from a state");
            Ok((c, Arc::new(p.read_members(c)?)))
        })
        .collect::<Result<_>>()?;

    let eval = Evaluator::new(index, catalog, as_of);
    let eval = if opts.sharing {
        eval
    } else {
        eval.without_sharing()
    };
    for (code, members) in &frozen {
        eval.fix_members(code, members.clone());
    }

    // Segments the index cannot answer (unknown attribute, wrong value
    // type, ...), and those that reference them. Reported when the pass
    // needs them: active, or referenced by an active segment (an inactive
    // segment nobody uses is not looked at).
    let mut relevant: HashSet<&str> = HashSet::new();
    let mut stack: Vec<&str> = catalog
        .segments()
        .iter()
        .filter(|s| s.active)
        .map(|s| s.code.as_str())
        .collect();
    while let Some(c) = stack.pop() {
        if relevant.insert(c) {
            for r in catalog.references(c) {
                if let Some(s) = catalog.get(&r) {
                    stack.push(s.code.as_str());
                }
            }
        }
    }
    let mut failed: HashSet<String> = HashSet::new();
    for e in eval.check() {
        if frozen.contains_key(e.code.as_str()) {
            continue; // its rule is not evaluated
        }
        if failed.insert(e.code.clone()) && relevant.contains(e.code.as_str()) {
            problems.push(e);
        }
    }
    skip_dependents(catalog, &relevant, &mut failed, &mut problems);

    let targets: Vec<&str> = catalog
        .segments()
        .iter()
        .filter(|s| s.active && !failed.contains(&s.code))
        .map(|s| s.code.as_str())
        .collect();
    let reported: HashSet<&str> = problems.iter().map(|e| e.code.as_str()).collect();
    let inactive: Vec<String> = catalog
        .segments()
        .iter()
        .filter(|s| !s.active && !reported.contains(s.code.as_str()))
        .map(|s| s.code.clone())
        .collect();

    // What to evaluate: the targets that are not frozen, and what they
    // reference (inactive segments' rules too); by dependency level.
    let mut needed: HashSet<&str> = HashSet::new();
    let mut stack: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|c| !frozen.contains_key(c))
        .collect();
    while let Some(c) = stack.pop() {
        if needed.insert(c) {
            for r in catalog.references(c) {
                if let Some(s) = catalog.get(&r)
                    && !frozen.contains_key(s.code.as_str())
                {
                    stack.push(s.code.as_str());
                }
            }
        }
    }
    let mut level: HashMap<String, usize> = HashMap::new();
    let mut levels: Vec<Vec<&str>> = Vec::new();
    for code in catalog.dependency_order() {
        let l = catalog
            .references(&code)
            .iter()
            .filter_map(|r| level.get(r).map(|l| l + 1))
            .max()
            .unwrap_or(0);
        if let Some(s) = catalog.get(&code)
            && needed.contains(s.code.as_str())
        {
            if levels.len() <= l {
                levels.resize(l + 1, Vec::new());
            }
            levels[l].push(s.code.as_str());
        }
        level.insert(code, l);
    }

    // The new generation. Member files are written as each segment is
    // evaluated, so the disk writes while the cores evaluate.
    let gen_name = format!("{pass_no:06}");
    let gen_root = state_dir.join(GEN);
    let gen_dir = gen_root.join(&gen_name);
    remove_tree(&gen_dir)?;
    let members_dir = gen_dir.join("members");
    let events_dir = gen_dir.join("events");
    create_dir(&members_dir)?;
    create_dir(&events_dir)?;
    let prev_gen = prev.as_ref().map(|p| p.generation_dir().to_path_buf());
    let as_of_us = as_of_micros(&as_of);
    let members = MembersWriter {
        index,
        prev: prev.as_ref(),
        prev_records: &prev_records,
        dir: &members_dir,
        written: AtomicU64::new(0),
        half: (targets.len() as u64).div_ceil(2).max(1),
        twins: if opts.sharing {
            same_rule_groups(
                catalog,
                targets.iter().copied().filter(|c| needed.contains(c)),
            )
        } else {
            HashMap::new()
        },
        written_twin: Mutex::new(HashMap::new()),
        deferred: Mutex::new(Vec::new()),
    };
    let is_target: HashSet<&str> = targets.iter().copied().collect();

    // Evaluate, level by level, each level in parallel; a target's member
    // files are written as soon as it is evaluated.
    let eval_started = Instant::now();
    let total = needed.len() as u64;
    let done = AtomicU64::new(0);
    progress(Progress {
        stage: Stage::Evaluating,
        done: 0,
        total,
    });
    let mut computed: HashMap<String, Computed> = HashMap::new();
    let mut diffs: HashMap<&str, Diff> = HashMap::new();
    // Segments some evaluated segment references: their members stay.
    let referenced: HashSet<String> = needed.iter().flat_map(|c| catalog.references(c)).collect();
    for codes in &levels {
        let codes: Vec<&str> = codes
            .iter()
            .copied()
            .filter(|c| catalog.references(c).iter().all(|r| !failed.contains(r)))
            .collect();
        let results: Vec<(&str, Evaluated, Option<Result<Diff>>)> = codes
            .par_iter()
            .map(|&code| {
                let t = Instant::now();
                let r = eval.evaluate(code);
                let seconds = t.elapsed().as_secs_f64();
                let files = match &r {
                    Ok(b) if is_target.contains(code) => Some(members.write(code, b)),
                    _ => None,
                };
                // Written, with who entered known, and referenced by no
                // one: the members are not needed again in this pass.
                let release = !referenced.contains(code)
                    && matches!(&files, Some(Ok(d)) if d.entered.is_some());
                let r: Evaluated = r.map(|b| {
                    let size = b.len();
                    if release {
                        eval.forget(code);
                        (None, size, seconds)
                    } else {
                        (Some(b), size, seconds)
                    }
                });
                progress(Progress {
                    stage: Stage::Evaluating,
                    done: done.fetch_add(1, Ordering::Relaxed) + 1,
                    total,
                });
                (code, r, files)
            })
            .collect();
        let failed_before = failed.len();
        for (code, r, files) in results {
            if let Some(d) = files {
                diffs.insert(code, d?);
            }
            match r {
                Ok((members, size, seconds)) => {
                    let is_static = catalog.get(code).is_some_and(|s| s.mode == Mode::Static);
                    computed.insert(
                        code.to_string(),
                        Computed {
                            members,
                            size,
                            outcome: if is_static {
                                Outcome::Formed
                            } else {
                                Outcome::Recomputed
                            },
                            seconds,
                        },
                    );
                }
                Err(QueryError::Segments(errs)) => {
                    failed.insert(code.to_string());
                    problems.extend(errs);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if failed.len() > failed_before {
            skip_dependents(catalog, &relevant, &mut failed, &mut problems);
        }
    }
    for (code, members) in &frozen {
        computed.insert(
            code.to_string(),
            Computed {
                members: Some(members.clone()),
                size: members.len(),
                outcome: Outcome::Frozen,
                seconds: 0.0,
            },
        );
    }
    let evaluate_seconds = eval_started.elapsed().as_secs_f64();
    let sharing = eval.sharing_stats();
    let targets: Vec<&str> = targets
        .into_iter()
        .filter(|c| !failed.contains(*c) && computed.contains_key(*c))
        .collect();
    crash::point("evaluated");

    // Frozen targets: their files (unchanged, so linked).
    let write_started = Instant::now();
    let rest: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|c| !diffs.contains_key(c))
        .collect();
    let rest_total = rest.len() as u64;
    let rest_done = AtomicU64::new(0);
    progress(Progress {
        stage: Stage::Writing,
        done: 0,
        total: rest_total,
    });
    let rest_diffs: Vec<Diff> = rest
        .par_iter()
        .map(|&code| {
            let d = members.write(code, kept_members(&computed, code, &members_dir)?);
            progress(Progress {
                stage: Stage::Writing,
                done: rest_done.fetch_add(1, Ordering::Relaxed) + 1,
                total: rest_total,
            });
            d
        })
        .collect::<Result<_>>()?;
    diffs.extend(rest.into_iter().zip(rest_diffs));
    let diffs: Vec<Diff> = targets
        .iter()
        .map(|c| {
            diffs
                .remove(c)
                .ok_or_else(|| io_err(&members_dir, format!("internal error: no files for `{c}`")))
        })
        .collect::<Result<_>>()?;
    let mut new_files: Vec<PathBuf> = diffs.iter().flat_map(|d| d.files.clone()).collect();
    new_files.extend(members.link_deferred()?);
    progress(Progress {
        stage: Stage::Committing,
        done: 0,
        total: 1,
    });

    // Segments not recalculated keep their files.
    let recalculated: HashSet<&str> = targets.iter().copied().collect();
    let mut records: BTreeMap<String, SegmentRecord> = BTreeMap::new();
    if let Some(p) = &prev {
        for (code, rec) in &prev_records {
            if recalculated.contains(code.as_str()) {
                continue;
            }
            new_files.extend(members.link(p, code)?);
            records.insert(code.clone(), rec.clone());
        }
    }

    // Events: the previous passes' files, and this pass's.
    let mut passes: Vec<PassRecord> = prev
        .as_ref()
        .map(|p| p.passes().to_vec())
        .unwrap_or_default();
    if let Some(pg) = &prev_gen {
        for p in &passes {
            let to = gen_dir.join(&p.events_file);
            if link_or_copy(&pg.join(&p.events_file), &to)? {
                new_files.push(to);
            }
        }
    }
    let events_file = format!("events/pass-{pass_no:06}.parquet");
    let events_path = gen_dir.join(&events_file);
    let mut changes: Vec<files::SegmentEvents<'_>> = Vec::new();
    for (&code, d) in targets.iter().zip(&diffs) {
        let entered = match &d.entered {
            Some(e) => e,
            None => kept_members(&computed, code, &members_dir)?,
        };
        if !entered.is_empty() || !d.left.is_empty() {
            changes.push((code, entered, &d.left));
        }
    }
    files::write_events_file(&events_path, index, &changes, as_of_us)?;
    new_files.push(events_path);
    crash::point("events");

    // History: the previous rows, and one per recalculated segment.
    let mut reports = Vec::new();
    let mut rows = Vec::new();
    for (code, d) in targets.iter().zip(&diffs) {
        let c = &computed[*code];
        let size = c.size;
        let entered = d.entered.as_ref().map_or(size, |e| e.len());
        reports.push(SegmentReport {
            code: code.to_string(),
            outcome: c.outcome,
            size,
            entered,
            left: d.left.len(),
            seconds: c.seconds,
        });
        rows.push(HistoryRow {
            pass: pass_no,
            code: code.to_string(),
            as_of_us,
            size,
            entered,
            left: d.left.len(),
            seconds: c.seconds,
        });
        let prev_rec = prev_records.get(*code);
        records.insert(
            code.to_string(),
            match c.outcome {
                Outcome::Recomputed => SegmentRecord {
                    mode: SegmentMode::Dynamic,
                    frozen: false,
                    size,
                    last_pass: pass_no,
                    formed_pass: None,
                },
                Outcome::Formed => SegmentRecord {
                    mode: SegmentMode::Static,
                    frozen: true,
                    size,
                    last_pass: pass_no,
                    formed_pass: Some(pass_no),
                },
                Outcome::Frozen => SegmentRecord {
                    last_pass: pass_no,
                    size,
                    ..prev_rec.cloned().expect("frozen segments have a record")
                },
            },
        );
    }
    let history_path = gen_dir.join("history.parquet");
    let mut hist_batches = match &prev_gen {
        Some(pg) => files::read_batches(&pg.join("history.parquet"))?,
        None => Vec::new(),
    };
    hist_batches.push(files::history_batch(&rows, &history_path)?);
    let bytes = files::parquet_bytes(&history_path, files::history_schema(), &hist_batches)?;
    write_file(&history_path, &bytes)?;
    new_files.push(history_path);
    crash::point("history");

    // state.json, then durability, then the commit.
    let seconds = started.elapsed().as_secs_f64();
    passes.push(PassRecord {
        pass: pass_no,
        as_of: as_of_text(&as_of),
        as_of_us,
        as_of_day: date_of(as_of.day).format("%Y-%m-%d").to_string(),
        started_at,
        seconds,
        recalculated: reports
            .iter()
            .filter(|r| r.outcome != Outcome::Frozen)
            .count() as u64,
        frozen: reports
            .iter()
            .filter(|r| r.outcome == Outcome::Frozen)
            .count() as u64,
        inactive: inactive.len() as u64,
        errors: problems.len() as u64,
        events_file,
        sharing: opts.sharing,
    });
    let doc = StateDoc {
        format: STATE_FORMAT.into(),
        format_version: STATE_FORMAT_VERSION,
        index: match &prev {
            Some(p) => p.index_identity().clone(),
            None => identity,
        },
        generation: gen_name.clone(),
        previous_generation: prev.as_ref().map(|p| p.doc().generation.clone()),
        passes,
        segments: records,
    };
    let state_path = gen_dir.join("state.json");
    let json = serde_json::to_vec_pretty(&doc).map_err(|e| io_err(&state_path, e))?;
    write_file(&state_path, &json)?;
    new_files.push(state_path);
    crash::point("state");
    if let Some(t) = dropping {
        t.join()
            .map_err(|_| io_err(&gen_root, "deleting the previous generation panicked"))??;
    }
    let write_seconds = write_started.elapsed().as_secs_f64();
    let sync_started = Instant::now();
    sync_all(
        &new_files,
        &[members_dir, events_dir, gen_dir.clone(), gen_root],
    )?;
    state::commit(state_dir, &gen_name)?;
    let sync_seconds = sync_started.elapsed().as_secs_f64();
    let cleanup_started = Instant::now();
    // Keep this generation and the previous one (a reader may have it open
    // until the next pass starts).
    let mut keep = vec![gen_name.as_str()];
    if let Some(p) = &prev {
        keep.push(p.doc().generation.as_str());
    }
    state::clean_stale(state_dir, &keep)?;
    let cleanup_seconds = cleanup_started.elapsed().as_secs_f64();
    progress(Progress {
        stage: Stage::Committing,
        done: 1,
        total: 1,
    });

    Ok(PassReport {
        pass: pass_no,
        as_of: as_of_text(&as_of),
        segments: reports,
        inactive,
        problems,
        sharing,
        evaluate_seconds,
        write_seconds,
        sync_seconds,
        cleanup_seconds,
        seconds: started.elapsed().as_secs_f64(),
        generation_dir: gen_dir,
    })
}

/// The members of `code` kept in `computed` (an internal error if they
/// were released: the pass releases only what it does not use again).
fn kept_members<'c>(
    computed: &'c HashMap<String, Computed>,
    code: &str,
    dir: &Path,
) -> Result<&'c Bitmap> {
    computed
        .get(code)
        .and_then(|c| c.members.as_deref())
        .ok_or_else(|| {
            io_err(
                dir,
                format!("internal error: the members of `{code}` were released"),
            )
        })
}

/// What writing a segment's member files found and wrote.
struct Diff {
    /// Who entered; `None` when every member did (no earlier members: not
    /// a second copy of the members).
    entered: Option<Bitmap>,
    /// Who left.
    left: Bitmap,
    /// The files written or copied (hard links need no sync).
    files: Vec<PathBuf>,
}

/// Writes the member files of the new generation, one segment at a time
/// from any thread: a segment whose members did not change links the
/// previous generation's files.
struct MembersWriter<'p> {
    index: &'p Index,
    prev: Option<&'p State>,
    prev_records: &'p BTreeMap<String, SegmentRecord>,
    /// The new generation's members directory.
    dir: &'p Path,
    /// Segments written so far.
    written: AtomicU64,
    /// After this many segments the `members` crash point is reached.
    half: u64,
    /// Evaluated segments whose rules are the same (equal canonical text)
    /// as another's, by code: a group number. They have equal members in
    /// this pass, so one writes the files and the others link them.
    twins: HashMap<&'p str, usize>,
    /// Per group, the segment that writes the new files, and whether it
    /// has finished.
    written_twin: Mutex<HashMap<usize, (String, bool)>>,
    /// Segments whose twin was still writing when they were done: linked
    /// by [`MembersWriter::link_deferred`].
    deferred: Mutex<Vec<String>>,
}

/// What a segment with twins does with its files.
enum TwinFiles {
    /// It writes them (the first of its group).
    Write,
    /// It links these, written by a twin.
    Link([PathBuf; 2]),
    /// A twin is writing them: link them once the evaluation is done.
    Later,
}

/// Groups the segments `codes` by rule (canonical text): each segment
/// whose rule another of them shares, with its group's number.
fn same_rule_groups<'c>(
    catalog: &'c Catalog,
    codes: impl Iterator<Item = &'c str>,
) -> HashMap<&'c str, usize> {
    let mut by_rule: HashMap<String, Vec<&'c str>> = HashMap::new();
    for code in codes {
        if let Some(s) = catalog.get(code) {
            by_rule.entry(s.rule.canonical()).or_default().push(code);
        }
    }
    by_rule
        .into_values()
        .filter(|g| g.len() > 1)
        .enumerate()
        .flat_map(|(n, g)| g.into_iter().map(move |c| (c, n)))
        .collect()
}

impl MembersWriter<'_> {
    /// Links (or, without hard links, copies) `code`'s member files from
    /// the previous state `p`; returns the copies (links need no sync).
    fn link(&self, p: &State, code: &str) -> Result<Vec<PathBuf>> {
        self.link_files([p.roaring_path(code), p.parquet_path(code)], code)
    }

    /// Links (or copies) `from` — a roaring and a Parquet member file — as
    /// `code`'s files of the new generation; returns the copies.
    fn link_files(&self, from: [PathBuf; 2], code: &str) -> Result<Vec<PathBuf>> {
        let mut copied = Vec::new();
        for (from, to) in from.iter().zip(self.paths(code)) {
            if link_or_copy(from, &to)? {
                copied.push(to);
            }
        }
        Ok(copied)
    }

    /// `code`'s new roaring and Parquet files.
    fn paths(&self, code: &str) -> [PathBuf; 2] {
        ["roaring", "parquet"].map(|ext| self.dir.join(format!("{code}.{ext}")))
    }

    /// Whether `code`, which has changed, writes its files or takes them
    /// from a segment with the same rule (so the same members); `None`
    /// when no other segment has its rule.
    fn twin_files(&self, code: &str) -> Option<TwinFiles> {
        let group = *self.twins.get(code)?;
        let mut written = self.written_twin.lock().expect("twin lock");
        Some(match written.get(&group) {
            None => {
                written.insert(group, (code.to_string(), false));
                TwinFiles::Write
            }
            Some((twin, true)) => TwinFiles::Link(self.paths(twin)),
            Some((_, false)) => TwinFiles::Later,
        })
    }

    /// Records that `code`'s files, which its twins share, are written.
    fn twin_written(&self, code: &str) {
        if let Some(group) = self.twins.get(code)
            && let Some(w) = self.written_twin.lock().expect("twin lock").get_mut(group)
        {
            w.1 = true;
        }
    }

    /// Links the files of the segments that found their twin still
    /// writing (all written now); returns the copies.
    fn link_deferred(&self) -> Result<Vec<PathBuf>> {
        let deferred = std::mem::take(&mut *self.deferred.lock().expect("deferred lock"));
        let mut copied = Vec::new();
        for code in deferred {
            let twin = self.twins.get(code.as_str()).and_then(|g| {
                let written = self.written_twin.lock().expect("twin lock");
                written.get(g).filter(|w| w.1).map(|w| w.0.clone())
            });
            let twin = twin.ok_or_else(|| {
                io_err(
                    self.dir,
                    format!("the files of `{code}`'s twin were not written"),
                )
            })?;
            copied.extend(self.link_files(self.paths(&twin), &code)?);
        }
        Ok(copied)
    }

    /// Writes `code`'s new files for `members` (and tells its twins);
    /// returns them.
    fn write_files(&self, code: &str, members: &Bitmap) -> Result<Vec<PathBuf>> {
        let [roaring, parquet] = self.paths(code);
        files::write_file_with(&roaring, |w| members.serialize_into(w))?;
        files::write_members_parquet(self.index, members, &parquet)?;
        self.twin_written(code);
        Ok(vec![roaring, parquet])
    }

    /// Writes (or links) `code`'s files for `members` and returns who
    /// entered and left since the previous pass.
    fn write(&self, code: &str, members: &Bitmap) -> Result<Diff> {
        // The previous state, when it holds members of `code`.
        let had = self.prev.filter(|_| self.prev_records.contains_key(code));
        let (entered, left) = match had {
            Some(p) => {
                let before = p.read_members(code)?;
                (Some(members - &before), &before - members)
            }
            None => (None, Bitmap::new()),
        };
        let unchanged = entered.as_ref().is_some_and(|e| e.is_empty()) && left.is_empty();
        let files = if let Some(p) = had.filter(|_| unchanged) {
            self.link(p, code)?
        } else {
            match self.twin_files(code) {
                Some(TwinFiles::Link(from)) => self.link_files(from, code)?,
                Some(TwinFiles::Later) => {
                    self.deferred
                        .lock()
                        .expect("deferred lock")
                        .push(code.to_string());
                    Vec::new()
                }
                None | Some(TwinFiles::Write) => self.write_files(code, members)?,
            }
        };
        if self.written.fetch_add(1, Ordering::Relaxed) + 1 == self.half {
            crash::point("members");
        }
        Ok(Diff {
            entered,
            left,
            files,
        })
    }
}

/// Marks every segment that references a failed one as failed too, with
/// a problem naming the reference when the pass needs it (`relevant`).
fn skip_dependents(
    catalog: &Catalog,
    relevant: &HashSet<&str>,
    failed: &mut HashSet<String>,
    problems: &mut Vec<SegmentError>,
) {
    loop {
        let mut changed = false;
        for s in catalog.segments() {
            if failed.contains(&s.code) {
                continue;
            }
            let mut refs = Vec::new();
            crate::defs::collect_refs(&s.rule, &mut refs);
            if let Some((target, path)) = refs.into_iter().find(|(t, _)| failed.contains(t)) {
                if !relevant.contains(s.code.as_str()) {
                    failed.insert(s.code.clone());
                    changed = true;
                    continue;
                }
                problems.push(SegmentError {
                    code: s.code.clone(),
                    path,
                    message: format!(
                        "skipped: references segment `{target}`, which is invalid or skipped"
                    ),
                });
                failed.insert(s.code.clone());
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}
