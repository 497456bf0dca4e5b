//! `segdex recalc`, `history` and `export` through the real binary, on a
//! dataset it generates itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

fn segdex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_segdex"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// What a reader of the state directory sees.
fn snapshot(state: &Path) -> BTreeMap<String, Vec<u8>> {
    segdex::recalc::visible_files(state).unwrap()
}

#[test]
fn recalc_history_and_export_through_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).to_string_lossy().to_string();
    ok(&segdex(&[
        "generate",
        "--customers",
        "1500",
        "--seed",
        "3",
        "--out",
        &p("data"),
    ]));
    ok(&segdex(&[
        "build",
        "--data",
        &p("data"),
        "--out",
        &p("index"),
    ]));
    let segs = tmp.path().join("segs");
    std::fs::create_dir(&segs).unwrap();
    std::fs::write(
        segs.join("a.json"),
        r#"{"code": "recent", "rule": {"purchased": {"window": {"last_days": 30}}}}"#,
    )
    .unwrap();
    std::fs::write(
        segs.join("b.json"),
        r#"[{"code": "founders", "mode": "static", "rule": {"purchased": {"window": {"last_days": 60}}}},
            {"code": "bad", "rule": {"attr": "shoe_size", "in": ["9"]}}]"#,
    )
    .unwrap();
    let (index, state, segs_s) = (p("index"), p("state"), segs.to_string_lossy().to_string());
    // One recalculation pass as of `as_of`, ready to run.
    let recalc = |as_of: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_segdex"));
        cmd.args([
            "recalc",
            "--index",
            &index,
            "--segments",
            &segs_s,
            "--as-of",
            as_of,
            "--state",
            &state,
        ]);
        cmd
    };

    // An invalid segment: reported, the others committed, exit status 2.
    let out = recalc("2026-10-31").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("segment `bad`: rule.attr"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("recent") && stdout.contains("founders") && stdout.contains("formed"));
    assert!(stdout.contains("pass 1 as of 2026-10-31"));
    assert!(
        !stdout.contains("evaluating"),
        "no progress bar off a terminal"
    );

    std::fs::write(
        segs.join("b.json"),
        r#"[{"code": "founders", "mode": "static", "rule": {"purchased": {"window": {"last_days": 60}}}}]"#,
    )
    .unwrap();
    let stdout = ok(&recalc("2026-11-20").output().unwrap());
    assert!(stdout.contains("frozen"), "{stdout}");

    // A segment file that is not JSON fails the pass; the state is untouched.
    let before = snapshot(tmp.path().join("state").as_path());
    std::fs::write(segs.join("c.json"), "{\"code\": ").unwrap();
    let out = recalc("2026-11-21").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("c.json"));
    assert_eq!(snapshot(tmp.path().join("state").as_path()), before);
    std::fs::remove_file(segs.join("c.json")).unwrap();

    // A kill -9 just before the commit leaves the state whole; the next
    // pass succeeds.
    let out = recalc("2026-11-21")
        .env("SEGDEX_CRASH_AT", "before-commit")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "{:?}", out.status);
    assert_eq!(snapshot(tmp.path().join("state").as_path()), before);
    let stdout = ok(&recalc("2026-11-21").output().unwrap());
    assert!(stdout.contains("pass 3 as of 2026-11-21"), "{stdout}");

    // History: a table, one row per segment per pass, and an SVG chart.
    let table = ok(&segdex(&["history", "--state", &state]));
    assert_eq!(table.lines().count(), 1 + 2 + 2 + 2);
    let svg = p("chart.svg");
    let table = ok(&segdex(&[
        "history",
        "--state",
        &state,
        "--segment",
        "recent",
        "--svg",
        &svg,
    ]));
    assert_eq!(table.lines().count(), 1 + 3);
    let last: Vec<&str> = table.lines().last().unwrap().split_whitespace().collect();
    let recent_size: usize = last[3].parse().unwrap();
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains(">recent</text>"));
    assert_eq!(chart.matches("<polyline").count(), 1);

    // Export: the latest members, with SPEC §5's header.
    let csv = p("recent.csv");
    let out = ok(&segdex(&[
        "export",
        "--index",
        &index,
        "--state",
        &state,
        "--segment",
        "recent",
        "--csv",
        &csv,
    ]));
    assert!(out.contains(&format!("{recent_size} members")), "{out}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.split("\r\n");
    assert_eq!(
        lines.next().unwrap(),
        "Name,First Name,Last Name,Email Address,Date Registered,Country,Postal Code,Lifetime Spend"
    );
    let rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), recent_size);
    assert!(rows.iter().all(|r| {
        let spend = r.rsplit(',').next().unwrap();
        spend.split_once('.').is_some_and(|(_, c)| c.len() == 2)
    }));
    let out = segdex(&[
        "export",
        "--index",
        &index,
        "--state",
        &state,
        "--segment",
        "bad",
        "--csv",
        &csv,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no members of segment `bad`"));

    for cmd in ["recalc", "history", "export"] {
        ok(&segdex(&[cmd, "--help"]));
    }
}
