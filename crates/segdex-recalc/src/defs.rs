//! Segment definitions for a pass, tolerant of bad segments: every valid
//! segment goes into a [`Catalog`]; every invalid one — and every segment
//! that references an invalid one — is a reported problem.

use crate::{RecalcError, Result};
use segdex_query::lang::{Condition, Segment, parse_segment};
use segdex_query::{Catalog, SegmentError};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// The segments of a pass: the valid ones as a [`Catalog`], and the
/// problems of the others (each named by code and JSON path).
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    catalog: Catalog,
    problems: Vec<SegmentError>,
}

impl Definitions {
    /// Reads a JSON file (one segment or an array) or a directory of them
    /// (`*.json`, in name order), as `segdex query` does. A file that
    /// cannot be read or is not JSON is an error; a bad segment inside is
    /// a problem, not an error.
    pub fn load(path: &Path) -> Result<Self> {
        let items = segdex_query::catalog::read_segment_files(path).map_err(|e| match e {
            segdex_query::QueryError::Io { path, message } => {
                RecalcError::Definitions { path, message }
            }
            other => RecalcError::Definitions {
                path: path.to_path_buf(),
                message: other.to_string(),
            },
        })?;
        Ok(Self::build(items))
    }

    /// Definitions from one segment object or an array of them.
    pub fn from_json(v: &Json) -> Self {
        let items = match v {
            Json::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, x)| (x.clone(), format!("#{i}")))
                .collect(),
            other => vec![(other.clone(), "#0".to_string())],
        };
        Self::build(items)
    }

    /// Definitions from an already valid catalog (no problems).
    pub fn from_catalog(catalog: Catalog) -> Self {
        Self {
            catalog,
            problems: Vec::new(),
        }
    }

    /// The valid segments.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The invalid segments and those skipped because they reference one,
    /// in definition order.
    pub fn problems(&self) -> &[SegmentError] {
        &self.problems
    }

    fn build(items: Vec<(Json, String)>) -> Self {
        let mut problems: Vec<(usize, SegmentError)> = Vec::new();
        let mut parsed: Vec<(usize, Segment, Json)> = Vec::new();
        for (i, (item, fallback)) in items.into_iter().enumerate() {
            match parse_segment(&item, &fallback) {
                Ok(s) => parsed.push((i, s, item)),
                Err(e) => problems.push((i, e)),
            }
        }
        // Duplicate codes: no definition of the code can be trusted.
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (_, s, _) in &parsed {
            *counts.entry(s.code.as_str()).or_default() += 1;
        }
        let dup: HashSet<String> = counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(c, _)| c.to_string())
            .collect();
        // Codes that have a definition, valid or not (for messages).
        let mut invalid: HashSet<String> = problems.iter().map(|(_, e)| e.code.clone()).collect();
        let mut valid: Vec<(usize, Segment, Json)> = Vec::new();
        for (i, s, item) in parsed {
            if dup.contains(&s.code) {
                problems.push((
                    i,
                    SegmentError {
                        code: s.code.clone(),
                        path: "code".into(),
                        message: "duplicate segment code: no definition of it is used".into(),
                    },
                ));
                invalid.insert(s.code.clone());
            } else {
                valid.push((i, s, item));
            }
        }

        // References: unknown targets, cycles, and dependents of invalid
        // segments.
        let refs: BTreeMap<String, Vec<(String, String)>> = valid
            .iter()
            .map(|(_, s, _)| {
                let mut r = Vec::new();
                collect_refs(&s.rule, &mut r);
                (s.code.clone(), r)
            })
            .collect();
        let pos: HashMap<String, usize> =
            valid.iter().map(|(i, s, _)| (s.code.clone(), *i)).collect();
        let mut bad: BTreeMap<String, SegmentError> = BTreeMap::new();
        for (code, rs) in &refs {
            for (target, path) in rs {
                if !refs.contains_key(target) && !invalid.contains(target) {
                    bad.entry(code.clone()).or_insert_with(|| SegmentError {
                        code: code.clone(),
                        path: path.clone(),
                        message: format!("references unknown segment `{target}`"),
                    });
                }
            }
        }
        for (members, text) in cycles(&refs) {
            for code in &members {
                bad.entry(code.clone()).or_insert_with(|| SegmentError {
                    code: code.clone(),
                    path: "rule".into(),
                    message: format!("segment references form a cycle: {text}"),
                });
            }
        }
        let mut excluded: HashSet<String> = invalid.clone();
        excluded.extend(bad.keys().cloned());
        propagate(&refs, &mut excluded, &mut bad);
        for (code, e) in bad {
            problems.push((pos[&code], e));
        }

        // The catalog of the rest. Catalog::from_json checks the same
        // rules; should it still find a problem, exclude and retry.
        let catalog = loop {
            let kept: Vec<Json> = valid
                .iter()
                .filter(|(_, s, _)| !excluded.contains(&s.code))
                .map(|(_, _, item)| item.clone())
                .collect();
            match Catalog::from_json(&Json::Array(kept)) {
                Ok(c) => break c,
                Err(errs) => {
                    let mut more = BTreeMap::new();
                    for e in errs {
                        if excluded.insert(e.code.clone()) {
                            more.insert(e.code.clone(), e);
                        }
                    }
                    if more.is_empty() {
                        // Cannot happen (each round excludes a segment), but
                        // never loop forever.
                        break Catalog::default();
                    }
                    propagate(&refs, &mut excluded, &mut more);
                    for (code, e) in more {
                        problems.push((pos.get(&code).copied().unwrap_or(usize::MAX), e));
                    }
                }
            }
        };
        problems.sort_by_key(|(i, _)| *i);
        Self {
            catalog,
            problems: problems.into_iter().map(|(_, e)| e).collect(),
        }
    }
}

/// Every `{"segment": code}` in `c`: (code, JSON path).
pub(crate) fn collect_refs(c: &Condition, out: &mut Vec<(String, String)>) {
    match c {
        Condition::All(v) | Condition::Any(v) => v.iter().for_each(|c| collect_refs(c, out)),
        Condition::Not(c) => collect_refs(c, out),
        Condition::Segment { code, path } => out.push((code.clone(), path.clone())),
        _ => {}
    }
}

/// Marks, until nothing changes, every segment that references an
/// excluded one as skipped.
fn propagate(
    refs: &BTreeMap<String, Vec<(String, String)>>,
    excluded: &mut HashSet<String>,
    bad: &mut BTreeMap<String, SegmentError>,
) {
    loop {
        let mut changed = false;
        for (code, rs) in refs {
            if excluded.contains(code) {
                continue;
            }
            if let Some((target, path)) = rs.iter().find(|(t, _)| excluded.contains(t)) {
                bad.insert(
                    code.clone(),
                    SegmentError {
                        code: code.clone(),
                        path: path.clone(),
                        message: format!(
                            "skipped: references segment `{target}`, which is invalid or skipped"
                        ),
                    },
                );
                excluded.insert(code.clone());
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

/// The reference cycles among `refs`: for each strongly connected
/// component that has a cycle, its members and a text naming one cycle
/// (`a -> b -> a`). Iterative Tarjan, so long chains cannot overflow the
/// stack.
fn cycles(refs: &BTreeMap<String, Vec<(String, String)>>) -> Vec<(Vec<String>, String)> {
    let names: Vec<&String> = refs.keys().collect();
    let id: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let edges: Vec<Vec<usize>> = names
        .iter()
        .map(|n| {
            refs[*n]
                .iter()
                .filter_map(|(t, _)| id.get(t.as_str()).copied())
                .collect()
        })
        .collect();
    let n = names.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0usize;
    let mut comps: Vec<Vec<usize>> = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(top) = work.last_mut() {
            let v = top.0;
            if top.1 < edges[v].len() {
                let w = edges[v][top.1];
                top.1 += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                work.pop();
                if let Some(&(u, _)) = work.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut comp = Vec::new();
                    loop {
                        let w = stack.pop().expect("on stack");
                        on_stack[w] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if comp.len() > 1 || edges[v].contains(&v) {
                        comps.push(comp);
                    }
                }
            }
        }
    }
    // One concrete cycle per component: breadth-first from its smallest
    // member back to itself, inside the component.
    comps
        .into_iter()
        .map(|comp| {
            let inside: HashSet<usize> = comp.iter().copied().collect();
            let start = *comp.iter().min().expect("non-empty");
            let mut prev: HashMap<usize, usize> = HashMap::new();
            let mut queue = std::collections::VecDeque::from([start]);
            let mut last = start;
            'bfs: while let Some(v) = queue.pop_front() {
                for &w in &edges[v] {
                    if !inside.contains(&w) {
                        continue;
                    }
                    if w == start {
                        last = v;
                        break 'bfs;
                    }
                    if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(w) {
                        e.insert(v);
                        queue.push_back(w);
                    }
                }
            }
            let mut path = vec![start];
            let mut v = last;
            while v != start {
                path.push(v);
                v = prev[&v];
            }
            path.push(start);
            // path = start, last, ..., start reversed: make it forward.
            let end = path.len() - 1;
            path[1..end].reverse();
            let mut text = path
                .iter()
                .map(|&i| names[i].as_str())
                .collect::<Vec<_>>()
                .join(" -> ");
            let mut rest: Vec<&str> = comp
                .iter()
                .filter(|i| !path.contains(i))
                .map(|&i| names[i].as_str())
                .collect();
            rest.sort();
            if !rest.is_empty() {
                text.push_str(&format!(" (also in the cycle: {})", rest.join(", ")));
            }
            let mut members: Vec<String> = comp.iter().map(|&i| names[i].clone()).collect();
            members.sort();
            (members, text)
        })
        .collect()
}
