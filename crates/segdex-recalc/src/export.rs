//! The snapshot CSV of a segment's latest members (SPEC §5).

use crate::files::fsync_dir;
use crate::{Result, State, io_err};
use segdex_index::Index;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The CSV header, exactly as SPEC §5 lists it.
pub const EXPORT_COLUMNS: [&str; 8] = [
    "Name",
    "First Name",
    "Last Name",
    "Email Address",
    "Date Registered",
    "Country",
    "Postal Code",
    "Lifetime Spend",
];

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// The CSV file.
    pub path: PathBuf,
    /// Data rows (members).
    pub rows: u64,
    /// The pass whose members were exported.
    pub pass: u64,
}

/// Cents as currency units with two decimals (`-3.05`, `0.00`).
pub(crate) fn money(cents: i128) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let a = cents.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// `First Last`, or whichever of the two is not empty.
pub(crate) fn full_name(first: &str, last: &str) -> String {
    match (first.is_empty(), last.is_empty()) {
        (false, false) => format!("{first} {last}"),
        (false, true) => first.to_string(),
        (true, _) => last.to_string(),
    }
}

/// Writes the snapshot CSV of segment `code`'s latest members in the
/// state directory `state_dir` to `csv_path` (RFC 4180: CRLF records,
/// fields quoted when they hold a comma, quote or line break), one row per
/// member in row order, with [`EXPORT_COLUMNS`]:
/// * `Name` is `first_name last_name` joined by a space (just the one that
///   is present when the other is empty; the customers table has no single
///   name column);
/// * `Date Registered` is the local date of `registered_at` (`YYYY-MM-DD`);
/// * `Lifetime Spend` is the spend over all of the customer's lines, in
///   currency units with two decimals, whatever the as-of;
/// * a column the customers table lacks, or a null, is an empty field.
///
/// The file is written under a temporary name beside `csv_path`, synced,
/// and renamed into place, so a crash never leaves half a CSV.
pub fn export_csv(
    index: &Index,
    state_dir: &Path,
    code: &str,
    csv_path: &Path,
) -> Result<ExportSummary> {
    let state = State::open(state_dir, index)?;
    let members = state.members(code)?;
    let pass = state.segments().get(code).map_or(0, |r| r.last_pass);
    let n = members.len() as usize;
    let text = |col: &str| -> Result<Vec<String>> {
        Ok(index
            .stored_texts(col, &members)?
            .unwrap_or_else(|| vec![String::new(); n]))
    };
    let first = text("first_name")?;
    let last = text("last_name")?;
    let email = text("email")?;
    let registered = text("registered_at")?;
    let country = text("country")?;
    let postal = text("postal_code")?;
    let spend = index.lifetime_cents(&members)?;

    let dir = match csv_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(io_err(
            csv_path,
            format!("directory {} does not exist", dir.display()),
        ));
    }
    let name = csv_path
        .file_name()
        .ok_or_else(|| io_err(csv_path, "not a file name"))?
        .to_string_lossy()
        .to_string();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> Result<()> {
        let file = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(std::io::BufWriter::with_capacity(1 << 20, file));
        let csv_err = |e: csv::Error| io_err(&tmp, e);
        w.write_record(EXPORT_COLUMNS).map_err(csv_err)?;
        for i in 0..n {
            w.write_record([
                full_name(&first[i], &last[i]).as_str(),
                &first[i],
                &last[i],
                &email[i],
                &registered[i],
                &country[i],
                &postal[i],
                &money(spend[i]),
            ])
            .map_err(csv_err)?;
        }
        let mut buf = w
            .into_inner()
            .map_err(|e| io_err(&tmp, e.error().to_string()))?;
        buf.flush().map_err(|e| io_err(&tmp, e))?;
        let file = buf.into_inner().map_err(|e| io_err(&tmp, e.error()))?;
        file.sync_all().map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, csv_path).map_err(|e| io_err(csv_path, e))?;
        fsync_dir(&dir)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(ExportSummary {
        path: csv_path.to_path_buf(),
        rows: n as u64,
        pass,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_two_decimals_and_a_sign() {
        assert_eq!(money(0), "0.00");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(123_456), "1234.56");
        assert_eq!(money(-305), "-3.05");
        assert_eq!(money(-5), "-0.05");
    }

    #[test]
    fn names_join_what_is_present() {
        assert_eq!(full_name("Ada", "Lovelace"), "Ada Lovelace");
        assert_eq!(full_name("Ada", ""), "Ada");
        assert_eq!(full_name("", "Lovelace"), "Lovelace");
        assert_eq!(full_name("", ""), "");
    }
}
