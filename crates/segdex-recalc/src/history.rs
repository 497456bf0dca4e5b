//! The size history: rows of history.parquet, a text table, and an SVG
//! line chart written by hand (a few dozen lines of SVG text need no
//! plotting crate, and the output stays small and dependency-free).

use crate::PassRecord;
use segdex_index::time::{Zone, date_of};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// One row of history.parquet: a segment's size after a pass.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// The pass.
    pub pass: u64,
    /// The segment.
    pub code: String,
    /// The pass's as-of (µs since the epoch, UTC).
    pub as_of_us: i64,
    /// Members after the pass.
    pub size: u64,
    /// Members that entered.
    pub entered: u64,
    /// Members that left.
    pub left: u64,
    /// Seconds the segment's evaluation took.
    pub seconds: f64,
}

/// The history as an aligned text table (pass, as-of, code, size,
/// entered, left, seconds), in the order of `rows`. The as-of is shown as
/// the pass recorded it (`passes`), else as a UTC instant.
pub fn history_table(rows: &[HistoryRow], passes: &[PassRecord]) -> String {
    let as_of: HashMap<u64, &str> = passes.iter().map(|p| (p.pass, p.as_of.as_str())).collect();
    let header = [
        "pass", "as_of", "code", "size", "entered", "left", "seconds",
    ];
    let body: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.pass.to_string(),
                as_of
                    .get(&r.pass)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| utc_text(r.as_of_us)),
                r.code.clone(),
                r.size.to_string(),
                r.entered.to_string(),
                r.left.to_string(),
                format!("{:.3}", r.seconds),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &body {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Text columns (as_of, code) left-aligned, numbers right-aligned.
    let left_aligned = [false, true, true, false, false, false, false];
    let line = |cells: &[&str]| -> String {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = width[i].saturating_sub(cell.chars().count());
            if left_aligned[i] {
                s.push_str(cell);
                if i + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad));
                }
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&header);
    for row in &body {
        out.push_str(&line(&row.each_ref().map(String::as_str)));
    }
    out
}

fn utc_text(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| us.to_string())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A 1-2-5 step giving about `n` intervals up to `max`.
fn nice_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// At most this many segments are drawn (the largest by latest size).
pub const SVG_MAX_SERIES: usize = 20;

const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// An SVG line chart of the history: one line per segment over as-of time
/// (for passes at the same as-of, the later pass), the x axis labelled
/// with dates in `timezone` (the index's zone; UTC if unknown), the y axis
/// with sizes, and a legend. At most [`SVG_MAX_SERIES`] segments are
/// drawn — the largest by latest size — and the title says so.
pub fn history_svg(rows: &[HistoryRow], timezone: &str) -> String {
    let zone = Zone::new(timezone).or_else(|_| Zone::new("UTC")).ok();
    // code -> as_of -> (pass, size)
    let mut series: BTreeMap<&str, BTreeMap<i64, (u64, u64)>> = BTreeMap::new();
    for r in rows {
        let e = series
            .entry(r.code.as_str())
            .or_default()
            .entry(r.as_of_us)
            .or_insert((r.pass, r.size));
        if r.pass >= e.0 {
            *e = (r.pass, r.size);
        }
    }
    let total = series.len();
    let mut chosen: Vec<(&str, Vec<(i64, u64)>)> = series
        .into_iter()
        .map(|(c, pts)| (c, pts.into_iter().map(|(t, (_, s))| (t, s)).collect()))
        .collect();
    if chosen.len() > SVG_MAX_SERIES {
        let latest =
            |pts: &Vec<(i64, u64)>| pts.iter().max_by_key(|(t, _)| *t).map_or(0, |(_, s)| *s);
        chosen.sort_by(|a, b| latest(&b.1).cmp(&latest(&a.1)).then(a.0.cmp(b.0)));
        chosen.truncate(SVG_MAX_SERIES);
        chosen.sort_by(|a, b| a.0.cmp(b.0));
    }

    let (w, h) = (960.0f64, 540.0f64);
    let (left, right, top, bottom) = (90.0, 240.0, 50.0, 70.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let times: Vec<i64> = chosen
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.0))
        .collect();
    let (mut t0, mut t1) = (
        times.iter().copied().min().unwrap_or(0),
        times.iter().copied().max().unwrap_or(0),
    );
    if t0 == t1 {
        t0 -= 86_400_000_000;
        t1 += 86_400_000_000;
    }
    let max_size = chosen
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.1))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step = nice_step(max_size, 5.0);
    let y_max = (max_size / step).ceil() * step;
    let x_of = |t: i64| left + (t - t0) as f64 / (t1 - t0) as f64 * pw;
    let y_of = |s: f64| top + ph - s / y_max * ph;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let title = if chosen.len() < total {
        format!(
            "Segment sizes ({} of {total} segments, the largest)",
            chosen.len()
        )
    } else {
        "Segment sizes".to_string()
    };
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="28" font-size="16" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        esc(&title)
    );
    // Y axis: grid lines and sizes.
    let mut v = 0.0;
    while v <= y_max + step / 2.0 {
        let y = y_of(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e0e0e0"/>"##,
            left + pw
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + 4.0,
            v as u64
        );
        v += step;
    }
    // X axis: the distinct as-ofs when few, else evenly spaced ticks.
    let mut distinct: Vec<i64> = times.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let ticks: Vec<i64> = if distinct.len() <= 8 && !distinct.is_empty() {
        distinct
    } else {
        (0..=5).map(|i| t0 + (t1 - t0) / 5 * i).collect()
    };
    let day_of = |t: i64| -> (String, String) {
        let ns = t.saturating_mul(1000);
        match &zone {
            Some(z) => {
                let day = z.local_day(ns);
                let local = ns / 1_000_000_000 + z.offset_secs(ns);
                let (hh, mm) = (local.rem_euclid(86_400) / 3600, local.rem_euclid(3600) / 60);
                (
                    date_of(day).format("%Y-%m-%d").to_string(),
                    format!("{hh:02}:{mm:02}"),
                )
            }
            None => (utc_text(t), String::new()),
        }
    };
    let labels: Vec<(String, String)> = ticks.iter().map(|&t| day_of(t)).collect();
    let mut dates: Vec<&String> = labels.iter().map(|l| &l.0).collect();
    dates.dedup();
    let with_time = dates.len() < labels.len();
    let _ = writeln!(
        svg,
        r##"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/>"##,
        top + ph,
        left + pw,
        top + ph
    );
    let _ = writeln!(
        svg,
        r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{:.1}" stroke="#333"/>"##,
        top + ph
    );
    // Labels at least 90 px apart, kept from the right (the latest as-of
    // is always labelled).
    let mut labelled = vec![false; ticks.len()];
    let mut last_x = f64::INFINITY;
    for i in (0..ticks.len()).rev() {
        let x = x_of(ticks[i]);
        if last_x - x >= 90.0 {
            labelled[i] = true;
            last_x = x;
        }
    }
    for (i, (t, (date, time))) in ticks.iter().zip(&labels).enumerate() {
        let x = x_of(*t);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#333"/>"##,
            top + ph,
            top + ph + 5.0
        );
        if !labelled[i] {
            continue;
        }
        let label = if with_time {
            format!("{date} {time}")
        } else {
            date.clone()
        };
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            top + ph + 20.0,
            esc(&label)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">as of</text>"#,
        left + pw / 2.0,
        h - 20.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="20" y="{:.1}" text-anchor="middle" transform="rotate(-90 20 {:.1})">members</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
    // Lines, points and the legend.
    for (i, (code, pts)) in chosen.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let points: Vec<String> = pts
            .iter()
            .map(|(t, s)| format!("{:.1},{:.1}", x_of(*t), y_of(*s as f64)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            points.join(" "),
            esc(code)
        );
        if pts.len() <= 120 {
            for (t, s) in pts {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{}: {s}</title></circle>"#,
                    x_of(*t),
                    y_of(*s as f64),
                    esc(code)
                );
            }
        }
        let ly = top + 10.0 + i as f64 * 20.0;
        let lx = left + pw + 20.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx:.1}" y="{:.1}" width="14" height="4" fill="{color}"/>"#,
            ly - 4.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 20.0,
            ly + 2.0,
            esc(code)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_five() {
        assert_eq!(nice_step(1.0, 5.0), 1.0);
        assert_eq!(nice_step(9.0, 5.0), 2.0);
        assert_eq!(nice_step(1234.0, 5.0), 500.0);
        assert_eq!(nice_step(100.0, 5.0), 20.0);
    }
}
