//! Time-bucketed bitmaps of a date attribute: one bitmap per year, per month
//! and per day that holds a value (FeatureBase's time quantums, applied to a
//! customer attribute). A range of days is answered by the union of the
//! fewest buckets that cover it exactly — whole years, then whole months,
//! then single days — so its cost follows the size of the answer, not the
//! number of customers, as a bit-sliced compare's does.
//!
//! Only non-empty buckets are stored: a column with a stray `0001-01-01` or
//! `9999-12-31` costs one bucket per level, not one per day in between.

use crate::time::{date_of, day_number, month_days, month_of};
use chrono::{Datelike, NaiveDate};

/// A calendar bucket: a whole year, a whole month (index as
/// [`month_of`]) or one day (day number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bucket {
    /// Every day of a year.
    Year(i32),
    /// Every day of a month (`year * 12 + month0`).
    Month(i32),
    /// One day.
    Day(i32),
}

/// First and last day numbers of `year`, or None past chrono's calendar.
fn year_days(year: i32) -> Option<(i32, i32)> {
    let a = NaiveDate::from_ymd_opt(year, 1, 1)?;
    let b = NaiveDate::from_ymd_opt(year, 12, 31)?;
    Some((day_number(a), day_number(b)))
}

/// The fewest buckets whose days, restricted to `span` (the first and last
/// day that hold data), are exactly `lo..=hi` restricted to `span`. A bucket
/// may reach outside the span: nothing is stored there.
pub fn cover(lo: i32, hi: i32, span: (i32, i32)) -> Vec<Bucket> {
    let lo = lo.max(span.0);
    let hi = hi.min(span.1);
    let clamp = |(a, b): (i32, i32)| (a.max(span.0), b.min(span.1));
    let mut out = Vec::new();
    let mut d = lo;
    while d <= hi {
        let year = date_of(d).year();
        if let Some((a, b)) = year_days(year).map(clamp)
            && a == d
            && b <= hi
        {
            out.push(Bucket::Year(year));
            d = b + 1;
            continue;
        }
        let m = month_of(d);
        let (a, b) = clamp(month_days(m));
        if a == d && b <= hi {
            out.push(Bucket::Month(m));
            d = b + 1;
            continue;
        }
        out.push(Bucket::Day(d));
        d += 1;
    }
    out
}

/// Where each non-empty bucket of one date attribute is stored: (key,
/// bitmap section) per level, sorted by key. Stored as one section of
/// little-endian u32 words: the three entry counts, then the entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DateTable {
    /// (year, section).
    pub years: Vec<(i32, u32)>,
    /// (month index, section).
    pub months: Vec<(i32, u32)>,
    /// (day number, section).
    pub days: Vec<(i32, u32)>,
}

impl DateTable {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        let mut words: Vec<u32> = vec![
            self.years.len() as u32,
            self.months.len() as u32,
            self.days.len() as u32,
        ];
        for level in [&self.years, &self.months, &self.days] {
            for &(k, s) in level {
                words.push(k as u32);
                words.push(s);
            }
        }
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// Reads the stored form; None when it is malformed (wrong length,
    /// keys out of order, a section at or past `sections`).
    pub fn decode(bytes: &[u8], sections: usize) -> Option<Self> {
        if !bytes.len().is_multiple_of(4) || bytes.len() < 12 {
            return None;
        }
        let words: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        let counts = [words[0] as usize, words[1] as usize, words[2] as usize];
        if 3 + 2 * counts.iter().sum::<usize>() != words.len() {
            return None;
        }
        let mut at = 3;
        let mut levels = Vec::new();
        for n in counts {
            let level: Vec<(i32, u32)> = words[at..at + 2 * n]
                .chunks_exact(2)
                .map(|c| (c[0] as i32, c[1]))
                .collect();
            at += 2 * n;
            let sorted = level.windows(2).all(|w| w[0].0 < w[1].0);
            if !sorted || level.iter().any(|&(_, s)| s as usize >= sections) {
                return None;
            }
            levels.push(level);
        }
        let days = levels.pop()?;
        let months = levels.pop()?;
        let years = levels.pop()?;
        Some(Self {
            years,
            months,
            days,
        })
    }

    /// The first and last day that hold a value (None when none does).
    pub fn span(&self) -> Option<(i32, i32)> {
        Some((self.days.first()?.0, self.days.last()?.0))
    }

    /// The bitmap sections whose union is the rows with a value in
    /// `lo..=hi` (buckets that hold nothing are left out).
    pub fn sections(&self, lo: i32, hi: i32) -> Vec<u32> {
        let Some(span) = self.span() else {
            return Vec::new();
        };
        let find = |level: &[(i32, u32)], k: i32| {
            level
                .binary_search_by_key(&k, |e| e.0)
                .ok()
                .map(|i| level[i].1)
        };
        cover(lo, hi, span)
            .into_iter()
            .filter_map(|b| match b {
                Bucket::Year(y) => find(&self.years, y),
                Bucket::Month(m) => find(&self.months, m),
                Bucket::Day(d) => find(&self.days, d),
            })
            .collect()
    }

    /// The sections of the rows outside `lo..=hi` that hold a value: the
    /// complement's cover, for ranges that take most rows.
    pub fn sections_outside(&self, lo: i32, hi: i32) -> Vec<u32> {
        let Some((first, last)) = self.span() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if lo > first {
            out.extend(self.sections(first, lo.saturating_sub(1)));
        }
        if hi < last {
            out.extend(self.sections(hi.saturating_add(1), last));
        }
        out
    }
}

/// Groups the rows of a date attribute by year, month and day, for
/// writing one bitmap per non-empty bucket. Rows are pushed in ascending
/// order.
#[derive(Debug, Default)]
pub struct DateBucketsBuilder {
    /// (day, row) pairs in row order.
    pairs: Vec<(i32, u32)>,
}

impl DateBucketsBuilder {
    /// Records that `row` has day `day`.
    pub fn push(&mut self, row: u32, day: i32) {
        self.pairs.push((day, row));
    }

    /// Every non-empty bucket with its rows (ascending), years first, then
    /// months, then days, each level sorted by key.
    pub fn finish(mut self) -> Vec<(Bucket, Vec<u32>)> {
        // A stable sort keeps rows ascending within a day.
        self.pairs.sort_by_key(|p| p.0);
        let mut days: Vec<(i32, Vec<u32>)> = Vec::new();
        for (d, r) in self.pairs {
            match days.last_mut() {
                Some((k, rows)) if *k == d => rows.push(r),
                _ => days.push((d, vec![r])),
            }
        }
        let mut out = Vec::new();
        for (level, key) in [
            (0, (|d: i32| date_of(d).year()) as fn(i32) -> i32),
            (1, month_of as fn(i32) -> i32),
        ] {
            let mut groups: Vec<(i32, Vec<u32>)> = Vec::new();
            for (d, rows) in &days {
                let k = key(*d);
                match groups.last_mut() {
                    Some((g, acc)) if *g == k => acc.extend(rows),
                    _ => groups.push((k, rows.clone())),
                }
            }
            for (k, mut rows) in groups {
                rows.sort_unstable();
                let b = if level == 0 {
                    Bucket::Year(k)
                } else {
                    Bucket::Month(k)
                };
                out.push((b, rows));
            }
        }
        out.extend(days.into_iter().map(|(d, rows)| (Bucket::Day(d), rows)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> i32 {
        day_number(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
    }

    fn days_of(b: Bucket) -> (i32, i32) {
        match b {
            Bucket::Year(y) => year_days(y).unwrap(),
            Bucket::Month(m) => month_days(m),
            Bucket::Day(x) => (x, x),
        }
    }

    /// The buckets' days inside the span are exactly the range's.
    fn check(lo: i32, hi: i32, span: (i32, i32)) {
        let c = cover(lo, hi, span);
        let mut got = Vec::new();
        for b in &c {
            let (a, z) = days_of(*b);
            got.extend((a.max(span.0)..=z.min(span.1)).collect::<Vec<_>>());
        }
        got.sort_unstable();
        let want: Vec<i32> = (lo.max(span.0)..=hi.min(span.1)).collect();
        assert_eq!(got, want, "cover({lo}, {hi}, {span:?}) = {c:?}");
    }

    #[test]
    fn covers_exactly_with_the_fewest_buckets() {
        let span = (d("1990-03-15"), d("2030-06-30"));
        assert_eq!(
            cover(d("2024-01-01"), d("2024-12-31"), span),
            vec![Bucket::Year(2024)]
        );
        assert_eq!(
            cover(d("2024-02-01"), d("2024-02-29"), span),
            vec![Bucket::Month(2024 * 12 + 1)]
        );
        // 2023-12-30 .. 2025-02-02: two days, a year, a month, two days.
        let c = cover(d("2023-12-30"), d("2025-02-02"), span);
        assert_eq!(c.len(), 6, "{c:?}");
        // The span's first year is whole from its first day on.
        assert_eq!(
            cover(d("1980-01-01"), d("1990-12-31"), span),
            vec![Bucket::Year(1990)]
        );
        assert_eq!(
            cover(d("2030-01-01"), d("2040-01-01"), span),
            vec![Bucket::Year(2030)]
        );
        assert!(cover(d("2031-01-01"), d("2040-01-01"), span).is_empty());
        assert!(cover(5, 4, span).is_empty());
    }

    #[test]
    fn covers_random_ranges_exactly() {
        let span = (d("1999-11-20"), d("2004-03-03"));
        let mut x: u64 = 0x2545F4914F6CDD1D;
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = span.0 - 400 + (x % 2400) as i32;
            let b = a + ((x >> 20) % 900) as i32 - 30;
            check(a, b, span);
        }
        // Leap days and month ends.
        check(d("2000-02-28"), d("2000-03-01"), span);
        check(d("2000-02-01"), d("2000-02-29"), span);
    }

    #[test]
    fn buckets_group_rows_and_the_table_finds_them() {
        let mut b = DateBucketsBuilder::default();
        let days = [
            d("2024-02-29"),
            d("2024-03-01"),
            d("2023-12-31"),
            d("2024-02-29"),
            d("9999-12-31"),
        ];
        for (row, &day) in days.iter().enumerate() {
            b.push(row as u32, day);
        }
        let buckets = b.finish();
        let mut table = DateTable::default();
        // Section i holds bucket i's rows.
        for (i, (bucket, rows)) in buckets.iter().enumerate() {
            assert!(rows.windows(2).all(|w| w[0] < w[1]));
            let s = i as u32;
            match bucket {
                Bucket::Year(y) => table.years.push((*y, s)),
                Bucket::Month(m) => table.months.push((*m, s)),
                Bucket::Day(x) => table.days.push((*x, s)),
            }
        }
        assert_eq!(table.years.len(), 3);
        assert_eq!(table.months.len(), 4);
        assert_eq!(table.days.len(), 4);
        let rows_of = |secs: Vec<u32>| {
            let mut r: Vec<u32> = secs
                .iter()
                .flat_map(|&s| buckets[s as usize].1.clone())
                .collect();
            r.sort_unstable();
            r
        };
        assert_eq!(
            rows_of(table.sections(d("2024-01-01"), d("2024-02-29"))),
            [0, 3]
        );
        assert_eq!(
            rows_of(table.sections(d("2024-01-01"), d("2024-12-31"))),
            [0, 1, 3]
        );
        assert_eq!(rows_of(table.sections(i32::MIN, i32::MAX)), [0, 1, 2, 3, 4]);
        assert_eq!(
            rows_of(table.sections_outside(d("2024-01-01"), d("2024-12-31"))),
            [2, 4]
        );
        let bytes = table.encode();
        assert_eq!(
            DateTable::decode(&bytes, buckets.len()),
            Some(table.clone())
        );
        assert_eq!(DateTable::decode(&bytes, 3), None, "a section out of range");
        assert_eq!(DateTable::decode(&bytes[..bytes.len() - 4], 99), None);
    }
}
