//! Calendar days in the index's time zone.
//!
//! Days are `i32` numbers of days since 1970-01-01 (a "day number"); instants
//! are `i64` nanoseconds since the Unix epoch (UTC).

use chrono::{Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;
use std::sync::atomic::{AtomicI64, Ordering};

/// Nanoseconds per second.
pub const NS_PER_SEC: i64 = 1_000_000_000;
// One-hour slots, 2^16 of them: the offsets of 7.5 years of instants stay
// cached (512 KB), so a build over years of orders rarely asks chrono-tz.
const SLOT_NS: i64 = 60 * 60 * NS_PER_SEC;
const CACHE: usize = 1 << 16;

/// The day number of a calendar date.
pub fn day_number(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")).num_days() as i32
}

/// The calendar date of a day number.
pub fn date_of(day: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid") + chrono::Duration::days(day as i64)
}

/// A month index (`year * 12 + month0`) of a day number.
pub fn month_of(day: i32) -> i32 {
    let d = date_of(day);
    d.year() * 12 + d.month0() as i32
}

/// The first and last day numbers of month index `m` (as [`month_of`]).
pub fn month_days(m: i32) -> (i32, i32) {
    let first = |m: i32| {
        let d = NaiveDate::from_ymd_opt(m.div_euclid(12), m.rem_euclid(12) as u32 + 1, 1)
            .expect("valid month");
        day_number(d)
    };
    (first(m), first(m + 1) - 1)
}

/// Index of a month-day in a 366-slot leap-year calendar (01-01 = 0,
/// 02-29 = 59, 12-31 = 365).
pub fn month_day_slot(month: u32, day: u32) -> usize {
    let leap = NaiveDate::from_ymd_opt(2000, month, day).expect("valid month-day");
    leap.ordinal0() as usize
}

/// A time zone with a fast, exact instant → local day conversion.
///
/// Offsets are cached per one-hour UTC slot; a slot is only cached when the
/// offset is the same at both its ends, so a transition inside a slot falls
/// back to the exact computation.
pub struct Zone {
    tz: Tz,
    name: String,
    slots: Vec<AtomicI64>,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

const EMPTY: i64 = i64::MIN;

impl Zone {
    /// Parses an IANA zone name ("UTC", "America/New_York").
    pub fn new(name: &str) -> Result<Self, String> {
        let tz: Tz = name.parse().map_err(|_| {
            format!("unknown time zone `{name}` (use an IANA name such as America/New_York)")
        })?;
        Ok(Self {
            tz,
            name: name.to_string(),
            slots: (0..CACHE).map(|_| AtomicI64::new(EMPTY)).collect(),
        })
    }

    /// The zone's IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The chrono-tz zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    fn offset_exact(&self, ns: i64) -> i64 {
        let secs = ns.div_euclid(NS_PER_SEC);
        match chrono::DateTime::from_timestamp(secs, 0) {
            Some(utc) => self
                .tz
                .offset_from_utc_datetime(&utc.naive_utc())
                .fix()
                .local_minus_utc() as i64,
            None => 0,
        }
    }

    /// UTC offset in seconds at instant `ns`.
    pub fn offset_secs(&self, ns: i64) -> i64 {
        let slot = ns.div_euclid(SLOT_NS);
        let cell = &self.slots[(slot as usize) % CACHE];
        let cached = cell.load(Ordering::Relaxed);
        // A cached entry packs the slot number (high bits) with the offset.
        if cached != EMPTY && cached >> 20 == slot {
            return (cached & 0xFFFFF) - 0x80000;
        }
        let start = slot * SLOT_NS;
        let a = self.offset_exact(start);
        let b = self.offset_exact(start + SLOT_NS - 1);
        if a == b {
            if slot.unsigned_abs() < (1u64 << 42) {
                cell.store((slot << 20) | (a + 0x80000), Ordering::Relaxed);
            }
            a
        } else {
            self.offset_exact(ns)
        }
    }

    /// The local day number of instant `ns`.
    pub fn local_day(&self, ns: i64) -> i32 {
        let local = ns.div_euclid(NS_PER_SEC) + self.offset_secs(ns);
        local.div_euclid(86_400) as i32
    }

    /// Whether every instant of local day `day` comes before the start of
    /// `day + 1` ([`Self::start_of_day`]), so that clipping purchases at
    /// the start of the next day cuts none of `day`'s. False (to be safe)
    /// when the day's last second is lived twice: where clocks fall back
    /// across midnight, the end of `day` can come again after the next day
    /// has begun.
    pub fn day_ends_before_next(&self, day: i32) -> bool {
        let last_second = date_of(day).and_hms_opt(23, 59, 59).expect("valid");
        !matches!(
            self.tz.from_local_datetime(&last_second),
            chrono::LocalResult::Ambiguous(..)
        )
    }

    /// The first instant of local day `day` (midnight, or the first valid
    /// local time after it when midnight falls in a DST gap).
    pub fn start_of_day(&self, day: i32) -> i64 {
        let midnight = date_of(day).and_hms_opt(0, 0, 0).expect("valid");
        let mut t: NaiveDateTime = midnight;
        for _ in 0..(48 * 4) {
            if let Some(dt) = self.tz.from_local_datetime(&t).earliest() {
                return dt.timestamp() * NS_PER_SEC;
            }
            t += chrono::Duration::minutes(15);
        }
        // No zone has a gap this long; fall back to UTC midnight.
        midnight.and_utc().timestamp() * NS_PER_SEC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn a_day_said_to_end_before_the_next_has_no_later_instant() {
        // Zones whose clocks change at or near midnight (São Paulo fell
        // back from 00:00 to 23:00 until 2019; Havana and Santiago change
        // around midnight), and one that changes at 02:00.
        let d = |s: &str| day_number(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        let mut said_false = Vec::new();
        for name in [
            "America/Sao_Paulo",
            "America/Havana",
            "America/Santiago",
            "Asia/Beirut",
            "America/Los_Angeles",
        ] {
            let z = Zone::new(name).unwrap();
            for day in d("2017-01-01")..d("2019-12-31") {
                if !z.day_ends_before_next(day) {
                    said_false.push((name, day));
                    continue;
                }
                // Every minute of the two days after the next day starts
                // is a later local day.
                let next = z.start_of_day(day + 1);
                for m in 0..2 * 24 * 60 {
                    let t = next + m * 60 * NS_PER_SEC;
                    assert!(z.local_day(t) > day, "{name} {day} minute {m}");
                }
            }
        }
        // The day before São Paulo's 2019 fall-back: its 23:00-24:00 came
        // twice, so it is not said to end first; Los Angeles changes at
        // 02:00, so each of its days ends before the next.
        assert!(said_false.contains(&("America/Sao_Paulo", d("2019-02-16"))));
        assert!(said_false.iter().all(|(n, _)| *n != "America/Los_Angeles"));
    }

    #[test]
    fn local_days_across_dst() {
        let z = Zone::new("America/New_York").unwrap();
        let d = |s: &str| day_number(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        // 2024-03-10: clocks jump 02:00 -> 03:00 EST -> EDT.
        assert_eq!(z.local_day(ns("2024-03-10T04:59:59Z")), d("2024-03-09"));
        assert_eq!(z.local_day(ns("2024-03-10T05:00:00Z")), d("2024-03-10"));
        assert_eq!(z.local_day(ns("2024-03-11T03:59:59Z")), d("2024-03-10"));
        assert_eq!(z.local_day(ns("2024-03-11T04:00:00Z")), d("2024-03-11"));
        // 2024-11-03: back to EST.
        assert_eq!(z.local_day(ns("2024-11-04T04:59:59Z")), d("2024-11-03"));
        assert_eq!(z.local_day(ns("2024-11-04T05:00:00Z")), d("2024-11-04"));
        assert_eq!(z.start_of_day(d("2024-03-11")), ns("2024-03-11T04:00:00Z"));
        // Twice, to read through the cache.
        for _ in 0..2 {
            assert_eq!(z.local_day(ns("2024-11-03T05:30:00Z")), d("2024-11-03"));
        }
    }

    #[test]
    fn midnight_in_a_gap_starts_the_day_at_the_first_valid_time() {
        // Chile (America/Santiago) moved clocks forward at 00:00 on 2023-09-03.
        let z = Zone::new("America/Santiago").unwrap();
        let day = day_number(NaiveDate::from_ymd_opt(2023, 9, 3).unwrap());
        assert_eq!(z.start_of_day(day), ns("2023-09-03T01:00:00-03:00"));
        assert_eq!(z.local_day(z.start_of_day(day)), day);
        assert_eq!(z.local_day(z.start_of_day(day) - 1), day - 1);
    }

    #[test]
    fn half_hour_zones() {
        let z = Zone::new("Australia/Lord_Howe").unwrap();
        for s in [
            "2024-04-06T14:59:59Z",
            "2024-04-06T15:00:00Z",
            "2024-10-05T15:29:00Z",
        ] {
            let t = ns(s);
            let exact = z.offset_exact(t);
            assert_eq!(z.offset_secs(t), exact, "{s}");
        }
        assert!(Zone::new("Mars/Olympus").is_err());
    }

    #[test]
    fn month_day_slots() {
        assert_eq!(month_day_slot(1, 1), 0);
        assert_eq!(month_day_slot(2, 29), 59);
        assert_eq!(month_day_slot(3, 1), 60);
        assert_eq!(month_day_slot(12, 31), 365);
    }
}
