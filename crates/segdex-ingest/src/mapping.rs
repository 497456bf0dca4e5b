//! The mapping file: one TOML section per table with its `path`, canonical =
//! "source column" renames and `exclude = [...]`.

use crate::tables::TableKind;
use crate::{IngestError, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How one table is found and renamed.
#[derive(Debug, Clone, Default)]
pub struct TableMapping {
    /// The table's file or directory, relative to the data directory.
    pub path: Option<String>,
    /// canonical name → source column name.
    pub renames: BTreeMap<String, String>,
    /// Source columns to leave out.
    pub exclude: Vec<String>,
}

/// A parsed mapping file.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    /// Where it was read from (for error messages).
    pub path: PathBuf,
    /// Per-table mappings; a table without a section uses its defaults.
    pub tables: BTreeMap<TableKind, TableMapping>,
}

impl Mapping {
    /// Reads and validates a mapping file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| IngestError::Mapping {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    /// Parses mapping TOML; `path` is used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let err = |message: String| IngestError::Mapping {
            path: path.to_path_buf(),
            message,
        };
        let value: toml::Table = text.parse().map_err(|e| err(format!("{e}")))?;
        let mut tables = BTreeMap::new();
        for (section, body) in value {
            let kind = TableKind::from_name(&section).ok_or_else(|| {
                err(format!(
                    "unknown section [{section}]; expected customers, orders, order_lines or products"
                ))
            })?;
            let body = body
                .as_table()
                .ok_or_else(|| err(format!("[{section}] must be a table")))?;
            let mut m = TableMapping::default();
            for (key, v) in body {
                match key.as_str() {
                    "path" => {
                        m.path = Some(
                            v.as_str()
                                .ok_or_else(|| err(format!("[{section}] path must be a string")))?
                                .to_string(),
                        )
                    }
                    "exclude" => {
                        let list = v.as_array().ok_or_else(|| {
                            err(format!(
                                "[{section}] exclude must be a list of column names"
                            ))
                        })?;
                        for item in list {
                            m.exclude.push(
                                item.as_str()
                                    .ok_or_else(|| {
                                        err(format!("[{section}] exclude must list strings"))
                                    })?
                                    .to_string(),
                            );
                        }
                    }
                    canonical => {
                        if !kind.canonical_columns().contains(&canonical)
                            && !kind.takes_custom_columns()
                        {
                            return Err(err(format!(
                                "[{section}] `{canonical}` is not a canonical column of {section} (canonical columns: {})",
                                kind.canonical_columns().join(", ")
                            )));
                        }
                        if kind.derived_names().contains(&canonical) {
                            return Err(err(format!(
                                "[{section}] `{canonical}` is a name segdex derives itself; choose another name"
                            )));
                        }
                        let source = v.as_str().ok_or_else(|| {
                            err(format!(
                                "[{section}] `{canonical}` must be the source column's name as a string"
                            ))
                        })?;
                        if let Some((other, _)) =
                            m.renames.iter().find(|(_, s)| s.as_str() == source)
                        {
                            return Err(err(format!(
                                "[{section}] source column `{source}` is mapped twice (to `{other}` and `{canonical}`)"
                            )));
                        }
                        m.renames.insert(canonical.to_string(), source.to_string());
                    }
                }
            }
            tables.insert(kind, m);
        }
        Ok(Self {
            path: path.to_path_buf(),
            tables,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let text = r#"
[customers]
path = "members.parquet"
customer_id = "member_no"

[order_lines]
path = "pos_export/tickets"
order_id = "ticket_id"
customer_id = "member_no"
ordered_at = "sold_at"
line_total = "net_amount"
store_id = "register_store"

[products]
path = "catalog.parquet"
product_type = "category"
exclude = ["supplier_notes"]
"#;
        let m = Mapping::parse(text, Path::new("m.toml")).unwrap();
        let lines = &m.tables[&TableKind::OrderLines];
        assert_eq!(lines.path.as_deref(), Some("pos_export/tickets"));
        assert_eq!(lines.renames["ordered_at"], "sold_at");
        assert_eq!(
            m.tables[&TableKind::Products].exclude,
            vec!["supplier_notes"]
        );
        assert!(!m.tables.contains_key(&TableKind::Orders));
    }

    #[test]
    fn rejects_unknown_sections_keys_and_double_mapping() {
        for (text, needle) in [
            ("[shoppers]\npath='x'", "unknown section [shoppers]"),
            ("[orders]\nmember='x'", "`member` is not a canonical column"),
            ("[customers]\nage='years'", "derives itself"),
            ("[customers]\nemail=3", "must be the source column's name"),
            ("[customers]\nfirst_name='n'\nlast_name='n'", "mapped twice"),
            ("[customers\n", "mapping"),
        ] {
            let e = Mapping::parse(text, Path::new("m.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e:?} lacks {needle:?}");
        }
    }
}
