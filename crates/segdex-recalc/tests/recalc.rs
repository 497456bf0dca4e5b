//! End-to-end tests of batch recalculation on generated data. Expected
//! memberships come from segdex-reference (an independent, row-by-row
//! evaluator); enter/leave events are checked against set differences of
//! those answers.

use arrow_array::{Array, Int64Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use segdex_index::{BuildOptions, Index, build_index};
use segdex_query::AsOf;
use segdex_recalc::{
    Change, Definitions, EXPORT_COLUMNS, Outcome, PassOptions, RecalcError, State, export_csv,
    history_svg, history_table, run_pass,
};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const TZ: &str = "America/Los_Angeles";
const A: &str = "2026-08-31";
const B: &str = "2026-11-20";

type Sets = BTreeMap<String, BTreeSet<String>>;

struct Fixture {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    index: PathBuf,
}

/// 3000 generated customers, built once for the whole test binary.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let index = tmp.path().join("index");
        make_index(&data, &index, 3000, 7);
        Fixture {
            _tmp: tmp,
            data,
            index,
        }
    })
}

fn make_index(data: &Path, index: &Path, customers: u64, seed: u64) {
    let opts = segdex_datagen::GenerateOptions {
        customers,
        seed,
        ..Default::default()
    };
    segdex_datagen::generate(&opts, data, &|_, _| {}).unwrap();
    let build = BuildOptions {
        timezone: TZ.into(),
        strict: false,
    };
    build_index(data, None, index, &build, &|_| {}).unwrap();
}

fn open_index() -> Index {
    Index::open(&fixture().index).unwrap()
}

fn as_of(index: &Index, t: &str) -> AsOf {
    AsOf::parse(t, index.zone()).unwrap()
}

/// The segments of most tests: dynamic ones, two sharing a sub-condition,
/// a static one and a dynamic one referencing it, an inactive one and a
/// dynamic one referencing that.
fn segments() -> Json {
    json!([
        {"code": "munchie_lovers", "mode": "dynamic", "active": true, "rule": {"all": [
            {"attr": "customer_type", "in": ["Recreational", "Medical", "Employee"]},
            {"purchased": {"where": {"product_type": ["Edibles"]}, "window": {"last_days": 30}}}
        ]}},
        {"code": "medical_edibles", "rule": {"all": [
            {"purchased": {"where": {"product_type": ["Edibles"]}, "window": {"last_days": 30}}},
            {"attr": "customer_type", "in": ["Medical"]}
        ]}},
        {"code": "win_back", "rule": {"all": [
            {"purchased": {}},
            {"not": {"purchased": {"window": {"last_days": 60}}}}
        ]}},
        {"code": "big_spenders", "rule": {"purchased": {"window": {"last_months": 12},
            "having": {"avg_order_value": {"gte": 75.0}, "orders": {"gte": 3}}}}},
        {"code": "vip", "mode": "static", "rule": {"purchased": {"window": {"last_months": 3},
            "having": {"spend": {"gte": 300}}}}},
        {"code": "vip_medical", "rule": {"all": [
            {"segment": "vip"},
            {"attr": "customer_type", "in": ["Medical"]}
        ]}},
        {"code": "dormant", "active": false, "rule": {"not": {"purchased": {"window": {"last_days": 120}}}}},
        {"code": "recent_not_dormant", "rule": {"all": [
            {"purchased": {"window": {"last_days": 200}}},
            {"not": {"segment": "dormant"}}
        ]}}
    ])
}

/// Reference answers for `segs` (plus a helper `medical`) as of `t`.
fn reference(segs: &Json, t: &str) -> Sets {
    static DATA: OnceLock<std::sync::Mutex<Option<segdex_reference::RefData>>> = OnceLock::new();
    let lock = DATA.get_or_init(|| std::sync::Mutex::new(None));
    let mut guard = lock.lock().unwrap();
    if guard.is_none() {
        *guard = Some(segdex_reference::load(&fixture().data, None, TZ).unwrap());
    }
    let mut all = segs.as_array().unwrap().clone();
    all.push(json!({"code": "medical", "rule": {"attr": "customer_type", "in": ["Medical"]}}));
    segdex_reference::evaluate(guard.as_ref().unwrap(), &Json::Array(all), t).unwrap()
}

/// What the state should hold after passes at `as_ofs` (in order), from
/// reference answers: dynamic segments are the answer at the pass's
/// as-of; `vip` is frozen at its first pass; `vip_medical` sees the frozen
/// `vip`.
fn expected(as_ofs: &[&str]) -> Sets {
    let first = reference(&segments(), as_ofs[0]);
    let last = reference(&segments(), as_ofs[as_ofs.len() - 1]);
    let mut out: Sets = last.clone();
    out.remove("dormant");
    out.remove("medical");
    out.insert("vip".into(), first["vip"].clone());
    out.insert(
        "vip_medical".into(),
        first["vip"]
            .intersection(&last["medical"])
            .cloned()
            .collect(),
    );
    out
}

fn parquet_ids(path: &Path) -> BTreeSet<String> {
    let f = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let (mut ints, mut texts) = (Vec::new(), Vec::new());
    for b in reader {
        let b = b.unwrap();
        assert_eq!(b.num_columns(), 1, "{}", path.display());
        let col = b.column_by_name("customer_id").unwrap();
        if let Some(a) = col.as_any().downcast_ref::<Int64Array>() {
            ints.extend(a.values().iter().copied());
        } else {
            let a = col.as_any().downcast_ref::<StringArray>().unwrap();
            texts.extend((0..a.len()).map(|i| a.value(i).to_string()));
        }
    }
    // Member files list ids ascending (README, recalculation decisions), each once.
    assert!(
        ints.windows(2).all(|w| w[0] < w[1]) && texts.windows(2).all(|w| w[0] < w[1]),
        "{}: ids do not strictly ascend",
        path.display()
    );
    ints.iter().map(|v| v.to_string()).chain(texts).collect()
}

fn roaring_ids(index: &Index, path: &Path) -> BTreeSet<String> {
    let bytes = std::fs::read(path).unwrap();
    let b = roaring::RoaringBitmap::deserialize_from(&bytes[..]).unwrap();
    index
        .external_ids(&b)
        .unwrap()
        .into_iter()
        .map(|i| i.to_string())
        .collect()
}

/// Members as the documented paths show them (parquet and roaring agree).
fn members(index: &Index, state: &Path, code: &str) -> BTreeSet<String> {
    let p = parquet_ids(&state.join("members").join(format!("{code}.parquet")));
    let r = roaring_ids(
        index,
        &state.join("members").join(format!("{code}.roaring")),
    );
    assert_eq!(p, r, "{code}: parquet and roaring members differ");
    p
}

/// Events of `pass`: code -> (entered, left).
fn events(state: &Path, pass: u64) -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let s = State::open_any(state).unwrap();
    let mut out: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for e in s.events(pass).unwrap() {
        let entry = out.entry(e.code.clone()).or_default();
        let set = match e.change {
            Change::Entered => &mut entry.0,
            Change::Left => &mut entry.1,
        };
        assert!(
            set.insert(e.customer_id.to_string()),
            "duplicate event {e:?}"
        );
    }
    out
}

fn diff(a: &BTreeSet<String>, b: &BTreeSet<String>) -> BTreeSet<String> {
    a.difference(b).cloned().collect()
}

fn pass(index: &Index, segs: &Json, t: &str, state: &Path) -> segdex_recalc::PassReport {
    run_pass(
        index,
        &Definitions::from_json(segs),
        as_of(index, t),
        state,
        &PassOptions::default(),
        &|_| {},
    )
    .unwrap()
}

const TARGETS: [&str; 7] = [
    "munchie_lovers",
    "medical_edibles",
    "win_back",
    "big_spenders",
    "vip",
    "vip_medical",
    "recent_not_dormant",
];

#[test]
fn two_passes_match_the_reference_and_events_are_set_differences() {
    let index = open_index();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");

    let r1 = pass(&index, &segments(), A, &state);
    assert!(r1.problems.is_empty(), "{:?}", r1.problems);
    assert_eq!(r1.pass, 1);
    assert_eq!(r1.inactive, vec!["dormant"]);
    let codes: Vec<&str> = r1.segments.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(codes, TARGETS);
    assert!(
        r1.sharing.shared_conditions >= 1 && r1.sharing.hits >= 1,
        "{:?}",
        r1.sharing
    );
    let vip1 = r1.segments.iter().find(|s| s.code == "vip").unwrap();
    assert_eq!(vip1.outcome, Outcome::Formed);

    let exp_a = expected(&[A]);
    for code in TARGETS {
        assert_eq!(
            members(&index, &state, code),
            exp_a[code],
            "{code} after pass 1"
        );
    }
    let ev1 = events(&state, 1);
    for code in TARGETS {
        let (entered, left) = ev1.get(code).cloned().unwrap_or_default();
        assert_eq!(entered, exp_a[code], "{code}: first pass, everyone entered");
        assert!(left.is_empty());
    }
    assert!(!state.join("members/dormant.parquet").exists());

    let r2 = pass(&index, &segments(), B, &state);
    assert!(r2.problems.is_empty(), "{:?}", r2.problems);
    let exp_b = expected(&[A, B]);
    // The test means something only if the two as-ofs differ in answers
    // and the static segment would have changed had it been dynamic.
    let ref_b = reference(&segments(), B);
    assert_ne!(
        ref_b["vip"], exp_a["vip"],
        "vip would change if it were dynamic"
    );
    assert_ne!(exp_b["munchie_lovers"], exp_a["munchie_lovers"]);
    for code in TARGETS {
        assert_eq!(
            members(&index, &state, code),
            exp_b[code],
            "{code} after pass 2"
        );
    }
    assert_eq!(exp_b["vip"], exp_a["vip"], "static segment unchanged");
    let ev2 = events(&state, 2);
    let mut changes = 0;
    for code in TARGETS {
        let (entered, left) = ev2.get(code).cloned().unwrap_or_default();
        assert_eq!(entered, diff(&exp_b[code], &exp_a[code]), "{code} entered");
        assert_eq!(left, diff(&exp_a[code], &exp_b[code]), "{code} left");
        changes += entered.len() + left.len();
    }
    assert!(changes > 0);
    assert!(!ev2.contains_key("vip"), "a frozen segment has no events");
    let rep = |r: &segdex_recalc::PassReport, c: &str| {
        r.segments.iter().find(|s| s.code == c).cloned().unwrap()
    };
    assert_eq!(rep(&r2, "vip").outcome, Outcome::Frozen);
    assert_eq!(rep(&r2, "munchie_lovers").outcome, Outcome::Recomputed);
    assert_eq!(
        rep(&r2, "win_back").entered as usize,
        diff(&exp_b["win_back"], &exp_a["win_back"]).len()
    );

    // history.parquet: one row per recalculated segment per pass.
    let s = State::open(&state, &index).unwrap();
    let hist = s.history().unwrap();
    assert_eq!(hist.len(), 2 * TARGETS.len());
    for h in &hist {
        let (exp, prev) = if h.pass == 1 {
            (&exp_a, None)
        } else {
            (&exp_b, Some(&exp_a))
        };
        assert_eq!(h.size as usize, exp[&h.code].len(), "{h:?}");
        let before = prev.map(|p| p[&h.code].clone()).unwrap_or_default();
        assert_eq!(
            h.entered as usize,
            diff(&exp[&h.code], &before).len(),
            "{h:?}"
        );
        assert_eq!(h.left as usize, diff(&before, &exp[&h.code]).len(), "{h:?}");
    }
    // The as_of column: the last microsecond of the local day.
    let a_us = chrono::DateTime::parse_from_rfc3339("2026-09-01T00:00:00-07:00")
        .unwrap()
        .timestamp_micros()
        - 1;
    assert!(
        hist.iter()
            .filter(|h| h.pass == 1)
            .all(|h| h.as_of_us == a_us)
    );

    // state.json at its documented path.
    let doc: Json =
        serde_json::from_slice(&std::fs::read(state.join("state.json")).unwrap()).unwrap();
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["passes"].as_array().unwrap().len(), 2);
    assert_eq!(doc["passes"][0]["as_of"], A);
    assert_eq!(doc["segments"]["vip"]["mode"], "static");
    assert_eq!(doc["segments"]["vip"]["frozen"], true);
    assert_eq!(doc["segments"]["vip"]["formed_pass"], 1);
    assert_eq!(doc["segments"]["munchie_lovers"]["frozen"], false);
    // Two generations at most are kept.
    assert_eq!(std::fs::read_dir(state.join("gen")).unwrap().count(), 2);
}

#[test]
fn sharing_off_gives_the_same_members() {
    let index = open_index();
    let tmp = tempfile::tempdir().unwrap();
    let (on, off) = (tmp.path().join("on"), tmp.path().join("off"));
    let defs = Definitions::from_json(&segments());
    let r_on = run_pass(
        &index,
        &defs,
        as_of(&index, B),
        &on,
        &PassOptions { sharing: true },
        &|_| {},
    )
    .unwrap();
    let r_off = run_pass(
        &index,
        &defs,
        as_of(&index, B),
        &off,
        &PassOptions { sharing: false },
        &|_| {},
    )
    .unwrap();
    assert!(r_on.sharing.hits > 0);
    assert_eq!(r_off.sharing.hits, 0);
    assert_eq!(r_off.sharing.shared_conditions, 0);
    for code in TARGETS {
        assert_eq!(
            members(&index, &on, code),
            members(&index, &off, code),
            "{code}"
        );
    }
}

#[test]
fn rerun_at_the_same_as_of_changes_nothing() {
    let index = open_index();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    pass(&index, &segments(), B, &state);
    let before: Vec<Vec<u8>> = TARGETS
        .iter()
        .map(|c| std::fs::read(state.join(format!("members/{c}.parquet"))).unwrap())
        .collect();
    let r2 = pass(&index, &segments(), B, &state);
    assert!(
        r2.segments.iter().all(|s| s.entered == 0 && s.left == 0),
        "{:?}",
        r2.segments
    );
    assert!(events(&state, 2).is_empty(), "no spurious events");
    let after: Vec<Vec<u8>> = TARGETS
        .iter()
        .map(|c| std::fs::read(state.join(format!("members/{c}.parquet"))).unwrap())
        .collect();
    assert_eq!(before, after);
    let hist = State::open_any(&state).unwrap().history().unwrap();
    let sizes = |p: u64| -> Vec<(String, u64)> {
        hist.iter()
            .filter(|h| h.pass == p)
            .map(|h| (h.code.clone(), h.size))
            .collect()
    };
    assert_eq!(sizes(1), sizes(2));
}

#[test]
fn a_pass_at_an_earlier_as_of_recomputes_the_past() {
    let index = open_index();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    pass(&index, &segments(), B, &state);
    pass(&index, &segments(), A, &state);
    let exp_b = expected(&[B]);
    // Dynamic segments: exactly the answer at A (data after A never
    // counts); vip stays frozen at its B members.
    let exp = expected(&[B, A]);
    assert_eq!(exp["vip"], exp_b["vip"]);
    for code in TARGETS {
        assert_eq!(members(&index, &state, code), exp[code], "{code}");
    }
    let ev = events(&state, 2);
    for code in TARGETS {
        let (entered, left) = ev.get(code).cloned().unwrap_or_default();
        assert_eq!(entered, diff(&exp[code], &exp_b[code]), "{code}");
        assert_eq!(left, diff(&exp_b[code], &exp[code]), "{code}");
    }
}

#[test]
fn invalid_segments_are_reported_and_the_others_run() {
    let index = open_index();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let segs = json!([
        {"code": "good", "rule": {"purchased": {"window": {"last_days": 30}}}},
        {"code": "bad_attr", "rule": {"all": [{"purchased": {}}, {"attr": "shoe_size", "gt": 3}]}},
        {"code": "needs_bad", "rule": {"any": [{"segment": "good"}, {"segment": "bad_attr"}]}},
        {"code": "needs_needs_bad", "rule": {"not": {"segment": "needs_bad"}}},
        {"code": "bad_key", "colour": "red", "rule": {"all": []}},
        {"code": "cyc_a", "rule": {"segment": "cyc_b"}},
        {"code": "cyc_b", "rule": {"all": [{"segment": "cyc_a"}]}},
        {"code": "twice", "rule": {"all": []}},
        {"code": "twice", "rule": {"any": []}},
        {"code": "lost", "rule": {"segment": "nowhere"}},
        {"code": "good_too", "rule": {"segment": "good"}},
        {"code": "off_and_bad", "active": false, "rule": {"attr": "shoe_size", "gt": 1}},
        {"code": "off_and_bad_but_used", "active": false, "rule": {"attr": "shoe_size", "gt": 2}},
        {"code": "uses_it", "rule": {"segment": "off_and_bad_but_used"}}
    ]);
    let r = pass(&index, &segs, B, &state);
    let problems: BTreeMap<&str, (&str, &str)> = r
        .problems
        .iter()
        .map(|e| (e.code.as_str(), (e.path.as_str(), e.message.as_str())))
        .collect();
    assert_eq!(problems["bad_attr"].0, "rule.all[1].attr", "{problems:?}");
    assert!(problems["bad_attr"].1.contains("shoe_size"));
    assert_eq!(problems["needs_bad"].0, "rule.any[1].segment");
    assert!(problems["needs_bad"].1.contains("bad_attr"));
    assert_eq!(problems["needs_needs_bad"].0, "rule.not.segment");
    assert_eq!(problems["bad_key"].0, "colour");
    assert!(
        problems["cyc_a"]
            .1
            .contains("cycle: cyc_a -> cyc_b -> cyc_a"),
        "{problems:?}"
    );
    assert!(problems["cyc_b"].1.contains("cycle"));
    assert!(problems["twice"].1.contains("duplicate"));
    assert_eq!(r.problems.iter().filter(|e| e.code == "twice").count(), 2);
    assert_eq!(problems["lost"].0, "rule.segment");
    assert!(problems["lost"].1.contains("unknown segment `nowhere`"));
    // An inactive segment is looked at only when an active one needs it.
    assert!(!problems.contains_key("off_and_bad"));
    assert_eq!(problems["off_and_bad_but_used"].0, "rule.attr");
    assert_eq!(problems["uses_it"].0, "rule.segment");
    assert_eq!(r.inactive, ["off_and_bad"]);
    assert_eq!(problems.len(), 10);
    assert_eq!(r.problems.len(), 11);

    let codes: Vec<&str> = r.segments.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(codes, ["good", "good_too"]);
    let good = reference(&json!([segs[0].clone()]), B)["good"].clone();
    assert!(!good.is_empty());
    assert_eq!(members(&index, &state, "good"), good);
    assert_eq!(members(&index, &state, "good_too"), good);
    assert!(!state.join("members/bad_attr.parquet").exists());
    let doc = State::open(&state, &index).unwrap();
    assert_eq!(doc.passes()[0].errors, 11);
}

#[test]
fn an_unreadable_segment_file_fails_before_the_state_is_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("segs");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.json"), r#"{"code": "a", "rule": {"all": []}}"#).unwrap();
    std::fs::write(dir.join("b.json"), r#"[{"code": "b", "rule": {"all": [}}]"#).unwrap();
    let e = Definitions::load(&dir).unwrap_err();
    assert!(matches!(e, RecalcError::Definitions { .. }));
    let text = e.to_string();
    assert!(
        text.contains("b.json") && text.contains("not valid JSON"),
        "{text}"
    );
    // A good directory loads, with a per-segment problem kept as such.
    std::fs::write(
        dir.join("b.json"),
        r#"[{"code": "b", "rule": {"attr": 3}}, {"code": "c", "rule": {"any": []}}]"#,
    )
    .unwrap();
    let d = Definitions::load(&dir).unwrap();
    assert_eq!(d.catalog().segments().len(), 2);
    assert_eq!(d.problems().len(), 1);
    assert_eq!(d.problems()[0].code, "b");
}

#[test]
fn a_state_from_another_index_or_version_is_refused() {
    let index = open_index();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let segs = json!([{"code": "everyone", "rule": {"all": []}}]);
    pass(&index, &segs, B, &state);

    let other = tmp.path().join("other");
    make_index(&tmp.path().join("other_data"), &other, 200, 99);
    let other = Index::open(&other).unwrap();
    let e = run_pass(
        &other,
        &Definitions::from_json(&segs),
        as_of(&other, B),
        &state,
        &PassOptions::default(),
        &|_| {},
    )
    .unwrap_err();
    assert!(matches!(e, RecalcError::State { .. }));
    assert!(e.to_string().contains("another index"), "{e}");
    assert!(
        State::open(&state, &other)
            .unwrap_err()
            .to_string()
            .contains("another index")
    );
    let csv = tmp.path().join("x.csv");
    assert!(export_csv(&other, &state, "everyone", &csv).is_err());
    assert!(!csv.exists());
    // The refused pass left the state as it was.
    assert_eq!(State::open(&state, &index).unwrap().passes().len(), 1);

    // Another format version.
    let sj = State::open_any(&state)
        .unwrap()
        .generation_dir()
        .join("state.json");
    let mut doc: Json = serde_json::from_slice(&std::fs::read(&sj).unwrap()).unwrap();
    doc["format_version"] = json!(99);
    std::fs::write(&sj, serde_json::to_vec(&doc).unwrap()).unwrap();
    let e = pass_err(&index, &segs, &state);
    assert!(e.contains("format version 99"), "{e}");

    // A directory that is not a state directory (and is left alone).
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir_all(foreign.join("members")).unwrap();
    let e = pass_err(&index, &segs, &foreign);
    assert!(e.contains("not a segdex state directory"), "{e}");
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 1);
}

fn pass_err(index: &Index, segs: &Json, state: &Path) -> String {
    run_pass(
        index,
        &Definitions::from_json(segs),
        as_of(index, B),
        state,
        &PassOptions::default(),
        &|_| {},
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn a_pass_is_refused_while_another_holds_the_lock() {
    use std::os::fd::AsRawFd;
    let index = open_index();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let f = std::fs::File::create(state.join(".lock")).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    let e = pass_err(&index, &json!([{"code": "a", "rule": {"all": []}}]), &state);
    assert!(e.contains("another recalculation is running"), "{e}");
    drop(f);
    pass(
        &index,
        &json!([{"code": "a", "rule": {"all": []}}]),
        B,
        &state,
    );
}

#[test]
fn static_segments_switch_modes_as_documented() {
    let index = open_index();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let seg = |mode: &str| json!([{"code": "s", "mode": mode, "rule": {"purchased": {"window": {"last_days": 14}}}}]);
    let at = |t: &str| reference(&seg("dynamic"), t)["s"].clone();
    pass(&index, &seg("static"), A, &state);
    pass(&index, &seg("static"), B, &state);
    assert_eq!(members(&index, &state, "s"), at(A));
    pass(&index, &seg("dynamic"), B, &state);
    assert_eq!(members(&index, &state, "s"), at(B));
    pass(&index, &seg("static"), A, &state); // formed again, now at A
    pass(&index, &seg("static"), B, &state);
    assert_eq!(members(&index, &state, "s"), at(A));
    assert_ne!(at(A), at(B));
}

// ---------------------------------------------------------------------------
// Crashes: a child process (this test binary, running the helper below)
// runs a pass with SEGDEX_CRASH_AT set and is killed with SIGKILL there.

fn crash_segments() -> Json {
    let all = segments();
    let keep = ["munchie_lovers", "win_back", "vip", "vip_medical"];
    Json::Array(
        all.as_array()
            .unwrap()
            .iter()
            .filter(|s| keep.contains(&s["code"].as_str().unwrap()))
            .cloned()
            .collect(),
    )
}

/// Not a test on its own: the body of the crashing child process. Does
/// nothing unless SEGDEX_TEST_CRASH_STATE is set.
#[test]
fn crash_child_helper() {
    let Ok(state) = std::env::var("SEGDEX_TEST_CRASH_STATE") else {
        return;
    };
    let index = Index::open(Path::new(
        &std::env::var("SEGDEX_TEST_CRASH_INDEX").unwrap(),
    ))
    .unwrap();
    let t = std::env::var("SEGDEX_TEST_CRASH_AS_OF").unwrap();
    let _ = run_pass(
        &index,
        &Definitions::from_json(&crash_segments()),
        as_of(&index, &t),
        Path::new(&state),
        &PassOptions::default(),
        &|_| {},
    );
    // Reaching this line means the crash point was never hit.
    std::process::exit(3);
}

fn crash_child(state: &Path, t: &str, point: &str) {
    use std::os::unix::process::ExitStatusExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_helper",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SEGDEX_CRASH_AT", point)
        .env("SEGDEX_TEST_CRASH_STATE", state)
        .env("SEGDEX_TEST_CRASH_INDEX", &fixture().index)
        .env("SEGDEX_TEST_CRASH_AS_OF", t)
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "child at {point}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a reader of the state directory sees.
fn snapshot(state: &Path) -> BTreeMap<String, Vec<u8>> {
    segdex_recalc::visible_files(state).unwrap()
}

fn check_clean(state: &Path) {
    let gens = std::fs::read_dir(state.join("gen")).unwrap().count();
    assert!(gens <= 2, "{gens} generations left");
    for e in std::fs::read_dir(state).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!name.ends_with(".tmp"), "left over: {name}");
    }
}

#[test]
fn a_crash_at_any_point_leaves_the_previous_state_whole() {
    let index = open_index();
    let exp_a = expected(&[A]);
    let exp_b = expected(&[A, B]);
    let codes = ["munchie_lovers", "win_back", "vip", "vip_medical"];
    for point in segdex_recalc::CRASH_POINTS {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        pass(&index, &crash_segments(), A, &state);
        let before = snapshot(&state);
        assert!(before.len() >= 2 * codes.len() + 3);

        crash_child(&state, B, point);
        let committed = point == "after-commit";
        let s = State::open(&state, &index).unwrap();
        if committed {
            assert_eq!(s.passes().len(), 2, "{point}");
            for c in codes {
                assert_eq!(members(&index, &state, c), exp_b[c], "{point}: {c}");
            }
        } else {
            assert_eq!(s.passes().len(), 1, "{point}");
            assert_eq!(
                snapshot(&state),
                before,
                "{point}: previous state not whole"
            );
        }

        // The next pass succeeds and is right.
        let r = pass(&index, &crash_segments(), B, &state);
        assert_eq!(r.pass, if committed { 3 } else { 2 }, "{point}");
        for c in codes {
            assert_eq!(members(&index, &state, c), exp_b[c], "{point}: {c}");
        }
        let ev = events(&state, r.pass);
        for c in codes {
            let (entered, left) = ev.get(c).cloned().unwrap_or_default();
            let prev = if committed { &exp_b[c] } else { &exp_a[c] };
            assert_eq!(entered, diff(&exp_b[c], prev), "{point}: {c}");
            assert_eq!(left, diff(prev, &exp_b[c]), "{point}: {c}");
        }
        check_clean(&state);
    }
}

#[test]
fn a_crash_in_the_first_pass_leaves_no_state() {
    let index = open_index();
    let exp_b = expected(&[B]);
    for point in [
        "evaluated",
        "members",
        "state",
        "before-commit",
        "after-commit",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        crash_child(&state, B, point);
        if point == "after-commit" {
            assert_eq!(State::open(&state, &index).unwrap().passes().len(), 1);
        } else {
            let e = State::open(&state, &index).unwrap_err().to_string();
            assert!(e.contains("no recalculation yet"), "{point}: {e}");
            assert!(snapshot(&state).is_empty(), "{point}");
        }
        let r = pass(&index, &crash_segments(), B, &state);
        assert_eq!(r.pass, if point == "after-commit" { 2 } else { 1 });
        for c in ["munchie_lovers", "win_back", "vip", "vip_medical"] {
            assert_eq!(members(&index, &state, c), exp_b[c], "{point}: {c}");
        }
        check_clean(&state);
    }
}

// ---------------------------------------------------------------------------
// History and export.

#[test]
fn history_table_and_svg() {
    let index = open_index();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    pass(&index, &segments(), A, &state);
    pass(&index, &segments(), B, &state);
    let s = State::open_any(&state).unwrap();
    let rows = s.history().unwrap();
    let table = history_table(&rows, s.passes());
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 1 + 2 * TARGETS.len());
    assert!(lines[0].starts_with("pass") && lines[0].contains("entered"));
    let exp_b = expected(&[A, B]);
    let row = lines
        .iter()
        .find(|l| l.contains(B) && l.contains(" win_back "))
        .unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[3], exp_b["win_back"].len().to_string());

    let svg = history_svg(&rows, TZ);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), TARGETS.len());
    assert_eq!(svg.matches("</polyline>").count(), TARGETS.len());
    for code in TARGETS {
        assert!(
            svg.contains(&format!(">{code}</text>")),
            "legend lacks {code}"
        );
    }
    assert!(svg.contains(&format!(">{A}</text>")) && svg.contains(&format!(">{B}</text>")));
    assert!(svg.contains(">0</text>"));
    assert!(svg.contains(">members</text>") && svg.contains(">as of</text>"));
}

/// A small hand-made dataset with string ids and awkward names.
fn csv_dataset(dir: &Path) {
    use arrow_array::{ArrayRef, Decimal128Array, RecordBatch, TimestampMicrosecondArray};
    use std::sync::Arc;
    let write = |name: &str, cols: Vec<(&str, ArrayRef)>| {
        std::fs::create_dir_all(dir).unwrap();
        let batch = RecordBatch::try_from_iter(cols).unwrap();
        let f = std::fs::File::create(dir.join(name)).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    };
    let strs = |v: &[Option<&str>]| -> ArrayRef { Arc::new(StringArray::from(v.to_vec())) };
    let us = |v: &[&str]| -> ArrayRef {
        let t: Vec<i64> = v
            .iter()
            .map(|s| {
                chrono::DateTime::parse_from_rfc3339(s)
                    .unwrap()
                    .timestamp_micros()
            })
            .collect();
        Arc::new(TimestampMicrosecondArray::from(t).with_timezone("UTC"))
    };
    write(
        "customers.parquet",
        vec![
            (
                "customer_id",
                strs(&[Some("c-1"), Some("c-2"), Some("c-3"), Some("c-4")]),
            ),
            (
                "first_name",
                strs(&[Some("Ann, Jr."), Some("Bo \"The Boss\""), Some("Zoë"), None]),
            ),
            (
                "last_name",
                strs(&[
                    Some("O'Neil"),
                    Some("Smith\nJones"),
                    Some("Ångström-Łukasz"),
                    Some("Solo"),
                ]),
            ),
            (
                "email",
                strs(&[
                    Some("ann@example.com"),
                    Some("bo@example.com"),
                    Some("zoe@exämple.com"),
                    None,
                ]),
            ),
            ("country", strs(&[Some("US"), Some("CA"), Some("SE"), None])),
            (
                "postal_code",
                strs(&[Some("94110"), Some("V5K 0A1"), Some("114 55"), None]),
            ),
            (
                "customer_type",
                strs(&[Some("Recreational"), Some("Medical"), Some("Medical"), None]),
            ),
            (
                "registered_at",
                us(&[
                    "2021-03-04T12:00:00Z",
                    "2022-01-01T07:59:00Z",
                    "2023-06-30T23:30:00Z",
                    "2024-02-29T10:00:00Z",
                ]),
            ),
        ],
    );
    write(
        "products.parquet",
        vec![
            (
                "product_id",
                Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
            ),
            ("product_type", strs(&[Some("Edibles"), Some("Prerolls")])),
        ],
    );
    write(
        "orders.parquet",
        vec![
            (
                "order_id",
                Arc::new(Int64Array::from(vec![10, 11, 12])) as ArrayRef,
            ),
            (
                "customer_id",
                strs(&[Some("c-1"), Some("c-1"), Some("c-2")]),
            ),
            (
                "ordered_at",
                us(&[
                    "2024-01-01T10:00:00Z",
                    "2024-02-01T10:00:00Z",
                    "2024-03-01T10:00:00Z",
                ]),
            ),
        ],
    );
    write(
        "order_lines.parquet",
        vec![
            (
                "order_id",
                Arc::new(Int64Array::from(vec![10, 10, 11, 12])) as ArrayRef,
            ),
            (
                "product_id",
                Arc::new(Int64Array::from(vec![1, 2, 1, 2])) as ArrayRef,
            ),
            (
                "quantity",
                Arc::new(Int64Array::from(vec![1, 2, 1, 1])) as ArrayRef,
            ),
            (
                "line_total",
                Arc::new(
                    Decimal128Array::from(vec![Some(123_450), Some(5), None, Some(1999)])
                        .with_precision_and_scale(12, 2)
                        .unwrap(),
                ) as ArrayRef,
            ),
        ],
    );
}

#[test]
fn export_csv_round_trips_awkward_text() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, idx) = (tmp.path().join("data"), tmp.path().join("index"));
    csv_dataset(&data);
    build_index(
        &data,
        None,
        &idx,
        &BuildOptions {
            timezone: TZ.into(),
            strict: false,
        },
        &|_| {},
    )
    .unwrap();
    let index = Index::open(&idx).unwrap();
    let state = tmp.path().join("state");
    let segs = json!([
        {"code": "everyone", "rule": {"all": []}},
        {"code": "medical", "rule": {"attr": "customer_type", "in": ["Medical"]}}
    ]);
    pass(&index, &segs, "2024-06-01", &state);
    // Parquet members keep the string id type.
    assert_eq!(
        members(&index, &state, "medical"),
        BTreeSet::from(["c-2".to_string(), "c-3".to_string()])
    );

    let (entered, left) = events(&state, 1)["medical"].clone();
    assert_eq!(
        entered,
        BTreeSet::from(["c-2".to_string(), "c-3".to_string()])
    );
    assert!(left.is_empty());

    let csv_path = tmp.path().join("out").join("everyone.csv");
    std::fs::create_dir_all(csv_path.parent().unwrap()).unwrap();
    let s = export_csv(&index, &state, "everyone", &csv_path).unwrap();
    assert_eq!(s.rows, 4);
    let bytes = std::fs::read(&csv_path).unwrap();
    assert!(bytes.starts_with(b"Name,First Name,Last Name,Email Address,Date Registered,Country,Postal Code,Lifetime Spend\r\n"));

    let mut r = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        EXPORT_COLUMNS
    );
    let got: BTreeSet<Vec<String>> = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    let row = |v: [&str; 8]| v.map(str::to_string).to_vec();
    let want = BTreeSet::from([
        row([
            "Ann, Jr. O'Neil",
            "Ann, Jr.",
            "O'Neil",
            "ann@example.com",
            "2021-03-04",
            "US",
            "94110",
            "1234.55",
        ]),
        // 2022-01-01T07:59Z is still 31 December in Los Angeles.
        row([
            "Bo \"The Boss\" Smith\nJones",
            "Bo \"The Boss\"",
            "Smith\nJones",
            "bo@example.com",
            "2021-12-31",
            "CA",
            "V5K 0A1",
            "19.99",
        ]),
        row([
            "Zoë Ångström-Łukasz",
            "Zoë",
            "Ångström-Łukasz",
            "zoe@exämple.com",
            "2023-06-30",
            "SE",
            "114 55",
            "0.00",
        ]),
        row(["Solo", "", "Solo", "", "2024-02-29", "", "", "0.00"]),
    ]);
    assert_eq!(got, want);

    let e = export_csv(&index, &state, "nobody", &tmp.path().join("n.csv")).unwrap_err();
    assert!(
        e.to_string().contains("no members of segment `nobody`"),
        "{e}"
    );
    // No temporary files left beside the CSV.
    assert_eq!(
        std::fs::read_dir(csv_path.parent().unwrap())
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn a_pass_keeps_its_predecessor_and_deletes_older_generations() {
    let index = open_index();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    for (k, t) in [A, B, A, B].into_iter().enumerate() {
        pass(&index, &segments(), t, &state);
        let mut gens: Vec<String> = std::fs::read_dir(state.join("gen"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        gens.sort();
        let want: Vec<String> = (k.saturating_sub(1)..=k)
            .map(|i| format!("{:06}", i + 1))
            .collect();
        assert_eq!(gens, want, "after pass {}", k + 1);
    }
}

#[test]
fn segments_with_the_same_rule_share_their_files_and_keep_their_own_events() {
    use std::os::unix::fs::MetadataExt;
    let index = open_index();
    let recent = json!({"purchased": {"window": {"last_days": 45}}});
    let medical = json!({"attr": "customer_type", "in": ["Medical"]});
    // `twin` is `orig` written the other way round; `frozen` is the same
    // rule, static, so it keeps its first pass's members.
    let segs = json!([
        {"code": "orig", "rule": {"all": [recent, medical]}},
        {"code": "twin", "rule": {"all": [medical, recent]}},
        {"code": "frozen", "mode": "static", "rule": {"all": [recent, medical]}},
        {"code": "other", "rule": recent}
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let inode = |state: &Path, code: &str, ext: &str| {
        std::fs::metadata(state.join(format!("members/{code}.{ext}")))
            .unwrap()
            .ino()
    };
    let (ra, rb) = (reference(&segs, A), reference(&segs, B));
    assert_ne!(ra["orig"], rb["orig"], "the two as-ofs must differ");
    let state = tmp.path().join("on");
    for (t, want) in [(A, &ra), (B, &rb)] {
        pass(&index, &segs, t, &state);
        for ext in ["roaring", "parquet"] {
            assert_eq!(inode(&state, "orig", ext), inode(&state, "twin", ext));
            assert_ne!(inode(&state, "orig", ext), inode(&state, "other", ext));
        }
        for code in ["orig", "twin", "other"] {
            assert_eq!(
                members(&index, &state, code),
                want[code],
                "{code} as of {t}"
            );
        }
        assert_eq!(members(&index, &state, "frozen"), ra["frozen"], "as of {t}");
    }
    // Each segment has its own events; the frozen one has none.
    let ev = events(&state, 2);
    for code in ["orig", "twin"] {
        assert_eq!(ev[code].0, diff(&rb[code], &ra[code]), "{code} entered");
        assert_eq!(ev[code].1, diff(&ra[code], &rb[code]), "{code} left");
    }
    assert!(!ev.contains_key("frozen"));
    // Without sharing every segment writes its own files.
    let off = tmp.path().join("off");
    run_pass(
        &index,
        &Definitions::from_json(&segs),
        as_of(&index, A),
        &off,
        &PassOptions { sharing: false },
        &|_| {},
    )
    .unwrap();
    assert_ne!(
        inode(&off, "orig", "parquet"),
        inode(&off, "twin", "parquet")
    );
    assert_eq!(members(&index, &off, "twin"), ra["twin"]);
}
