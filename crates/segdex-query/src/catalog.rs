//! A set of segment definitions: loaded from a file or a directory, codes
//! unique, `segment` references resolved and free of cycles.

use crate::QueryError;
use crate::lang::{Condition, Segment, SegmentError, parse_segment};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::path::Path;

/// Segment definitions that reference each other only among themselves.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    segments: Vec<Segment>,
    by_code: HashMap<String, usize>,
}

impl Catalog {
    /// Builds a catalog from one segment object or an array of them.
    pub fn from_json(v: &Json) -> Result<Self, Vec<SegmentError>> {
        let items: Vec<&Json> = match v {
            Json::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut errors = Vec::new();
        let mut segments = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match parse_segment(item, &format!("#{i}")) {
                Ok(s) => segments.push(s),
                Err(e) => errors.push(e),
            }
        }
        let cat = Self::from_segments(segments, &mut errors);
        if errors.is_empty() {
            Ok(cat)
        } else {
            Err(errors)
        }
    }

    fn from_segments(segments: Vec<Segment>, errors: &mut Vec<SegmentError>) -> Self {
        let mut by_code = HashMap::new();
        let mut kept = Vec::new();
        for s in segments {
            if by_code.contains_key(&s.code) {
                errors.push(SegmentError {
                    code: s.code.clone(),
                    path: "code".into(),
                    message: "duplicate segment code".into(),
                });
                continue;
            }
            by_code.insert(s.code.clone(), kept.len());
            kept.push(s);
        }
        let cat = Self {
            segments: kept,
            by_code,
        };
        errors.extend(cat.check_references());
        cat
    }

    /// Reads a JSON file (one segment or an array) or a directory of them
    /// (`*.json`, in name order).
    pub fn load(path: &Path) -> Result<Self, QueryError> {
        let mut segments = Vec::new();
        let mut errors = Vec::new();
        for (item, fallback) in read_segment_files(path)? {
            match parse_segment(&item, &fallback) {
                Ok(s) => segments.push(s),
                Err(e) => errors.push(e),
            }
        }
        let cat = Self::from_segments(segments, &mut errors);
        if errors.is_empty() {
            Ok(cat)
        } else {
            Err(QueryError::Segments(errors))
        }
    }

    /// The segments, in definition order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The segment with `code`.
    pub fn get(&self, code: &str) -> Option<&Segment> {
        self.by_code.get(code).map(|&i| &self.segments[i])
    }

    /// Codes of the segments `code` references directly.
    pub fn references(&self, code: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(s) = self.get(code) {
            collect_refs(&s.rule, &mut |c, _| out.push(c.to_string()));
        }
        out
    }

    /// Codes in dependency order: every segment after those it references.
    pub fn dependency_order(&self) -> Vec<String> {
        let mut done = std::collections::HashSet::new();
        let mut out = Vec::new();
        fn visit(
            cat: &Catalog,
            code: &str,
            done: &mut std::collections::HashSet<String>,
            out: &mut Vec<String>,
        ) {
            if !done.insert(code.to_string()) {
                return;
            }
            for r in cat.references(code) {
                if cat.get(&r).is_some() {
                    visit(cat, &r, done, out);
                }
            }
            out.push(code.to_string());
        }
        for s in &self.segments {
            visit(self, &s.code, &mut done, &mut out);
        }
        out
    }

    fn check_references(&self) -> Vec<SegmentError> {
        let mut errors = Vec::new();
        for s in &self.segments {
            collect_refs(&s.rule, &mut |c, path| {
                if self.get(c).is_none() {
                    errors.push(SegmentError {
                        code: s.code.clone(),
                        path: path.to_string(),
                        message: format!("references unknown segment `{c}`"),
                    });
                }
            });
        }
        // Cycles: depth-first search with colours.
        let mut state: HashMap<&str, u8> = HashMap::new();
        fn dfs<'a>(
            cat: &'a Catalog,
            code: &'a str,
            state: &mut HashMap<&'a str, u8>,
            stack: &mut Vec<&'a str>,
            errors: &mut Vec<SegmentError>,
        ) {
            match state.get(code) {
                Some(2) => return,
                Some(1) => {
                    let start = stack.iter().position(|c| *c == code).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[start..].to_vec();
                    cycle.push(code);
                    errors.push(SegmentError {
                        code: code.to_string(),
                        path: "rule".into(),
                        message: format!("segment references form a cycle: {}", cycle.join(" -> ")),
                    });
                    return;
                }
                _ => {}
            }
            state.insert(code, 1);
            stack.push(code);
            if let Some(s) = cat.get(code) {
                let mut refs = Vec::new();
                collect_refs(&s.rule, &mut |c, _| refs.push(c.to_string()));
                for r in refs {
                    if let Some(target) = cat.get(&r) {
                        dfs(cat, &target.code, state, stack, errors);
                    }
                }
            }
            stack.pop();
            state.insert(code, 2);
        }
        for s in &self.segments {
            dfs(self, &s.code, &mut state, &mut Vec::new(), &mut errors);
        }
        errors
    }
}

fn collect_refs(c: &Condition, f: &mut dyn FnMut(&str, &str)) {
    match c {
        Condition::All(v) | Condition::Any(v) => v.iter().for_each(|c| collect_refs(c, f)),
        Condition::Not(c) => collect_refs(c, f),
        Condition::Segment { code, path } => f(code, path),
        _ => {}
    }
}

/// The segment objects in a JSON file (one segment or an array) or a
/// directory of such files (`*.json`, in name order), each with the name
/// that stands for it while its `code` is unknown (`file.json#i`). A file
/// that cannot be read or is not JSON is an error naming it.
pub fn read_segment_files(path: &Path) -> Result<Vec<(Json, String)>, QueryError> {
    let io = |p: &Path, message: String| QueryError::Io {
        path: p.to_path_buf(),
        message,
    };
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let mut f: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| io(path, e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        f.sort();
        f
    } else {
        vec![path.to_path_buf()]
    };
    let mut items = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| io(file, e.to_string()))?;
        let v: Json =
            serde_json::from_str(&text).map_err(|e| io(file, format!("not valid JSON: {e}")))?;
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        match v {
            Json::Array(a) => {
                for (i, item) in a.into_iter().enumerate() {
                    items.push((item, format!("{name}#{i}")));
                }
            }
            other => items.push((other, format!("{name}#0"))),
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_resolve_and_cycles_are_errors() {
        let ok = Catalog::from_json(&json!([
            {"code": "b", "rule": {"segment": "a"}},
            {"code": "a", "rule": {"all": []}},
        ]))
        .unwrap();
        assert_eq!(ok.dependency_order(), vec!["a", "b"]);
        let errs = Catalog::from_json(&json!([
            {"code": "a", "rule": {"not": {"segment": "b"}}},
            {"code": "b", "rule": {"any": [{"segment": "a"}]}},
            {"code": "c", "rule": {"segment": "zz"}},
            {"code": "c", "rule": {"all": []}},
        ]))
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter().any(|e| e.contains("cycle: a -> b -> a")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("rule.segment: references unknown segment `zz`")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|e| e.contains("duplicate segment code")),
            "{text:?}"
        );
    }
}
