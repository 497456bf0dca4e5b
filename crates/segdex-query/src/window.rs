//! The as-of instant and windows of days (SPEC §2.3, §3).

use crate::lang::{Anniversary, Window};
use chrono::{Datelike, Months, NaiveDate};
use segdex_index::chunk::Clip;
use segdex_index::time::{Zone, date_of, day_number, month_day_slot};

/// When a segment is evaluated: the local day D and the last instant whose
/// purchases count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AsOf {
    /// D, the local calendar day (day number).
    pub day: i32,
    /// Purchases at or before this instant (ns since epoch) count.
    pub clip_ns: i64,
    /// True when given as a date whose instants all come before the next
    /// day starts ([`Zone::day_ends_before_next`]: every zone but where
    /// clocks fall back across midnight): the whole of D counts and the
    /// clip cuts no purchase of D or earlier, so no instant need be read.
    pub whole_day: bool,
}

impl AsOf {
    /// Parses `YYYY-MM-DD` (the whole local day) or an RFC 3339 instant.
    pub fn parse(text: &str, zone: &Zone) -> Result<Self, String> {
        if let Some(day) = crate::lang::parse_date(text) {
            return Ok(Self {
                day,
                clip_ns: zone.start_of_day(day + 1) - 1,
                whole_day: zone.day_ends_before_next(day),
            });
        }
        // An instant without a zone is UTC, like every zoneless timestamp.
        let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
            .iter()
            .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok());
        if let Some(n) = naive {
            let ns = n
                .and_utc()
                .timestamp_nanos_opt()
                .ok_or_else(|| format!("as-of `{text}` is outside the years 1677..2262"))?;
            return Ok(Self {
                day: zone.local_day(ns),
                clip_ns: ns,
                whole_day: false,
            });
        }
        let t = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| {
            format!("as-of `{text}`: expected YYYY-MM-DD or an RFC 3339 instant such as 2026-11-20T18:00:00-08:00")
        })?;
        let ns = t
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("as-of `{text}` is outside the years 1677..2262"))?;
        Ok(Self {
            day: zone.local_day(ns),
            clip_ns: ns,
            whole_day: false,
        })
    }

    /// The cut a line-store walk applies to purchases on D, or `None` when
    /// it cuts nothing ([`AsOf::whole_day`]).
    pub fn clip(&self) -> Option<Clip> {
        (!self.whole_day).then_some(Clip {
            day: self.day,
            ns: self.clip_ns,
        })
    }
}

/// An inclusive range of day numbers; `None` bounds are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    /// First day, or unbounded.
    pub lo: Option<i32>,
    /// Last day, or unbounded.
    pub hi: Option<i32>,
}

impl DayRange {
    fn new(lo: i32, hi: i32) -> Self {
        Self {
            lo: Some(lo),
            hi: Some(hi),
        }
    }

    /// Whether the range holds no day.
    pub fn is_empty(&self) -> bool {
        matches!((self.lo, self.hi), (Some(a), Some(b)) if a > b)
    }

    /// Whether `day` is in the range.
    pub fn contains(&self, day: i32) -> bool {
        self.lo.is_none_or(|a| day >= a) && self.hi.is_none_or(|b| day <= b)
    }

    /// The range cut to end no later than `day`.
    pub fn until(self, day: i32) -> Self {
        Self {
            lo: self.lo,
            hi: Some(self.hi.map_or(day, |h| h.min(day))),
        }
    }
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists")
}

/// The days of window `w` when D is `d`.
pub fn days(w: Window, d: i32) -> DayRange {
    let date = date_of(d);
    let monday = d - date.weekday().num_days_from_monday() as i32;
    let month_start = first_of_month(date);
    let dn = day_number;
    match w {
        Window::AllTime => DayRange {
            lo: None,
            hi: Some(d),
        },
        Window::Today => DayRange::new(d, d),
        Window::Yesterday => DayRange::new(d - 1, d - 1),
        Window::ThisWeek => DayRange::new(monday, d),
        Window::LastWeek => DayRange::new(monday - 7, monday - 1),
        Window::CurrentWeek => DayRange::new(monday, monday + 6),
        Window::MonthToDate => DayRange::new(dn(month_start), d),
        Window::PreviousMonth => {
            let prev = month_start - Months::new(1);
            DayRange::new(dn(prev), dn(month_start) - 1)
        }
        Window::CurrentMonth => {
            let next = month_start + Months::new(1);
            DayRange::new(dn(month_start), dn(next) - 1)
        }
        Window::YearToDate => DayRange::new(
            dn(NaiveDate::from_ymd_opt(date.year(), 1, 1).expect("valid")),
            d,
        ),
        Window::LastYear => DayRange::new(
            dn(NaiveDate::from_ymd_opt(date.year() - 1, 1, 1).expect("valid")),
            dn(NaiveDate::from_ymd_opt(date.year(), 1, 1).expect("valid")) - 1,
        ),
        Window::LastDays(n) => DayRange::new(d - (n as i32 - 1), d),
        Window::NextDays(n) => DayRange::new(d, d + (n as i32 - 1)),
        Window::RelativeDays(a, b) => DayRange::new(d + a, d + b),
        Window::LastMonths(n) => {
            // checked_sub_months clamps the day to the month's end.
            let back = date
                .checked_sub_months(Months::new(n))
                .unwrap_or(NaiveDate::MIN);
            DayRange::new(dn(back) + 1, d)
        }
        Window::Between(a, b) => DayRange::new(a, b),
        Window::Since(a) => DayRange::new(a, d),
        Window::Before(a) => DayRange {
            lo: None,
            hi: Some(a - 1),
        },
    }
}

/// The month-day slots (see [`month_day_slot`]) an anniversary window
/// covers when D is `d`.
pub fn anniversary_slots(a: Anniversary, d: i32) -> Vec<bool> {
    let mut slots = vec![false; 366];
    match a {
        Anniversary::MonthDays((m1, d1), (m2, d2)) => {
            let (s1, s2) = (month_day_slot(m1, d1), month_day_slot(m2, d2));
            for (s, slot) in slots.iter_mut().enumerate() {
                *slot = if s1 <= s2 {
                    (s1..=s2).contains(&s)
                } else {
                    s >= s1 || s <= s2
                };
            }
        }
        Anniversary::Days(w) => {
            let r = days(w, d);
            match (r.lo, r.hi) {
                // A window of a year (365 days) or more covers every
                // month-day, even when it spans 29 February and so misses
                // one calendar month-day (SPEC §2.4).
                (Some(lo), Some(hi)) if hi - lo + 1 < 365 => {
                    for day in lo..=hi {
                        let date = date_of(day);
                        slots[month_day_slot(date.month(), date.day())] = true;
                        // 29 February counts as 28 February in other years.
                        if date.month() == 2 && date.day() == 28 && !date.leap_year() {
                            slots[month_day_slot(2, 29)] = true;
                        }
                    }
                }
                (Some(lo), Some(hi)) if lo > hi => {}
                _ => slots.iter_mut().for_each(|s| *s = true),
            }
        }
    }
    slots
}

/// The latest birth date (day number) of someone who is at least `years`
/// old on day `d`: the same month-day `years` earlier, 29 February clamped
/// to 28 February (so a 29-February birthday turns a year older on 1 March
/// in other years).
pub fn born_by(d: i32, years: i64) -> Option<i32> {
    let date = date_of(d);
    let y = i32::try_from(date.year() as i64 - years).ok()?;
    let target = NaiveDate::from_ymd_opt(y, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(y, date.month(), date.day() - 1))?;
    Some(day_number(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> i32 {
        crate::lang::parse_date(s).unwrap()
    }
    fn r(w: Window, at: &str) -> (String, String) {
        let x = days(w, d(at));
        let show = |v: Option<i32>| v.map_or("-".into(), |v| date_of(v).to_string());
        (show(x.lo), show(x.hi))
    }
    fn p(a: &str, b: &str) -> (String, String) {
        (a.into(), b.into())
    }

    #[test]
    fn calendar_windows_at_edges() {
        // 2024-03-03 is a Sunday; 2024 is a leap year.
        assert_eq!(
            r(Window::ThisWeek, "2024-03-03"),
            p("2024-02-26", "2024-03-03")
        );
        assert_eq!(
            r(Window::LastWeek, "2024-03-04"),
            p("2024-02-26", "2024-03-03")
        );
        assert_eq!(
            r(Window::CurrentWeek, "2024-03-04"),
            p("2024-03-04", "2024-03-10")
        );
        assert_eq!(
            r(Window::PreviousMonth, "2024-03-31"),
            p("2024-02-01", "2024-02-29")
        );
        assert_eq!(
            r(Window::PreviousMonth, "2025-01-15"),
            p("2024-12-01", "2024-12-31")
        );
        assert_eq!(
            r(Window::CurrentMonth, "2023-02-10"),
            p("2023-02-01", "2023-02-28")
        );
        assert_eq!(
            r(Window::MonthToDate, "2024-01-01"),
            p("2024-01-01", "2024-01-01")
        );
        assert_eq!(
            r(Window::YearToDate, "2024-12-31"),
            p("2024-01-01", "2024-12-31")
        );
        assert_eq!(
            r(Window::LastYear, "2025-01-01"),
            p("2024-01-01", "2024-12-31")
        );
        assert_eq!(
            r(Window::LastDays(1), "2024-03-01"),
            p("2024-03-01", "2024-03-01")
        );
        assert_eq!(
            r(Window::LastDays(14), "2024-03-01"),
            p("2024-02-17", "2024-03-01")
        );
        assert_eq!(
            r(Window::NextDays(7), "2024-12-28"),
            p("2024-12-28", "2025-01-03")
        );
        assert_eq!(
            r(Window::RelativeDays(-2, 3), "2024-01-01"),
            p("2023-12-30", "2024-01-04")
        );
        // Month-end clamping: 31 March minus one month is 29 February (leap).
        assert_eq!(
            r(Window::LastMonths(1), "2024-03-31"),
            p("2024-03-01", "2024-03-31")
        );
        assert_eq!(
            r(Window::LastMonths(1), "2023-03-31"),
            p("2023-03-01", "2023-03-31")
        );
        assert_eq!(
            r(Window::LastMonths(1), "2024-03-30"),
            p("2024-03-01", "2024-03-30")
        );
        assert_eq!(
            r(Window::LastMonths(12), "2024-02-29"),
            p("2023-03-01", "2024-02-29")
        );
        assert_eq!(
            r(Window::LastMonths(3), "2024-05-31"),
            p("2024-03-01", "2024-05-31")
        );
        assert_eq!(r(Window::AllTime, "2024-05-31"), p("-", "2024-05-31"));
        assert_eq!(
            r(Window::Before(d("2024-05-01")), "2020-01-01"),
            p("-", "2024-04-30")
        );
        assert!(days(Window::Since(d("2024-06-01")), d("2024-05-31")).is_empty());
    }

    #[test]
    fn anniversaries() {
        let slots = |a, at| {
            anniversary_slots(a, d(at))
                .iter()
                .enumerate()
                .filter(|(_, s)| **s)
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        let feb = |day| month_day_slot(2, day);
        // Non-leap year: 28 February also takes 29 February birthdays.
        assert_eq!(
            slots(Anniversary::Days(Window::Today), "2023-02-28"),
            vec![feb(28), feb(29)]
        );
        assert_eq!(
            slots(Anniversary::Days(Window::Today), "2024-02-28"),
            vec![feb(28)]
        );
        assert_eq!(
            slots(Anniversary::Days(Window::Today), "2024-02-29"),
            vec![feb(29)]
        );
        // Literal ranges are literal.
        assert_eq!(
            slots(Anniversary::MonthDays((2, 27), (2, 28)), "2023-01-01"),
            vec![feb(27), feb(28)]
        );
        let wrap = slots(Anniversary::MonthDays((12, 30), (1, 2)), "2023-01-01");
        assert_eq!(wrap, vec![0, 1, 364, 365]);
        // A year or more covers every month-day.
        assert_eq!(
            slots(Anniversary::Days(Window::LastYear), "2024-06-01").len(),
            366
        );
        assert_eq!(
            slots(Anniversary::Days(Window::LastDays(365)), "2024-11-09").len(),
            366
        );
        assert_eq!(
            slots(Anniversary::Days(Window::NextDays(365)), "2024-02-02").len(),
            366
        );
        assert_eq!(
            slots(Anniversary::Days(Window::NextDays(364)), "2023-02-02").len(),
            365
        );
        assert_eq!(
            slots(Anniversary::Days(Window::AllTime), "2024-06-01").len(),
            366
        );
        let next7 = slots(Anniversary::Days(Window::NextDays(7)), "2023-12-28");
        assert_eq!(next7, vec![0, 1, 2, 362, 363, 364, 365]);
    }

    #[test]
    fn ages_turn_on_the_birthday_and_29_february_on_1_march() {
        assert_eq!(born_by(d("2024-06-15"), 21), Some(d("2003-06-15")));
        assert_eq!(born_by(d("2024-02-29"), 1), Some(d("2023-02-28")));
        assert_eq!(born_by(d("2023-02-28"), 3), Some(d("2020-02-28")));
        assert_eq!(born_by(d("2023-03-01"), 3), Some(d("2020-03-01")));
    }

    #[test]
    fn as_of_dates_and_instants() {
        let z = Zone::new("America/New_York").unwrap();
        let a = AsOf::parse("2024-03-10", &z).unwrap();
        assert_eq!(a.day, d("2024-03-10"));
        assert_eq!(a.clip_ns + 1, z.start_of_day(d("2024-03-11")));
        let b = AsOf::parse("2024-03-11T03:30:00Z", &z).unwrap();
        assert_eq!(b.day, d("2024-03-10"));
        assert!(!b.whole_day);
        let c = AsOf::parse("2024-03-11T03:30:00", &z).unwrap();
        assert_eq!(c, b);
        assert!(AsOf::parse("2024-13-01", &z).is_err());
        assert!(AsOf::parse("yesterday", &z).is_err());
    }
}
