//! Time is injected: production reads the system clock, tests move a fixed one.

use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// The source of "now" for every lifecycle rule.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;
}

/// The system clock, truncated to whole seconds (X.509 times carry no fractions).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        truncate(OffsetDateTime::now_utc())
    }
}

/// A clock that stands still until moved; for tests and simulations.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    pub fn new(at: OffsetDateTime) -> FixedClock {
        FixedClock(Mutex::new(truncate(at)))
    }

    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = truncate(at);
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *t += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Unix seconds as RFC 3339 (`2026-11-25T10:00:00Z`); empty if out of range.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// `at` plus `years` calendar years (29 February becomes 28 February).
pub fn add_years(at: OffsetDateTime, years: u8) -> OffsetDateTime {
    let year = at.year() + i32::from(years);
    at.replace_year(year)
        .or_else(|_| at.replace_day(28).and_then(|t| t.replace_year(year)))
        .unwrap_or(at + Duration::days(365 * i64::from(years)))
}

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_RO: [&str; 12] = [
    "ianuarie",
    "februarie",
    "martie",
    "aprilie",
    "mai",
    "iunie",
    "iulie",
    "august",
    "septembrie",
    "octombrie",
    "noiembrie",
    "decembrie",
];

/// A date as people write it, in UTC: `2 December 2028`, or in Romanian
/// `2 decembrie 2028`.
pub fn long_date(t: OffsetDateTime, romanian: bool) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let months = if romanian { &MONTHS_RO } else { &MONTHS_EN };
    let month = months.get(usize::from(u8::from(t.month())).saturating_sub(1)).copied().unwrap_or_default();
    format!("{} {month} {}", t.day(), t.year())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn years_are_calendar_years() {
        assert_eq!(add_years(datetime!(2026-03-01 10:00 UTC), 3), datetime!(2029-03-01 10:00 UTC));
        assert_eq!(add_years(datetime!(2028-02-29 10:00 UTC), 1), datetime!(2029-02-28 10:00 UTC));
    }

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let c = FixedClock::new(datetime!(2026-01-01 0:00 UTC));
        c.advance(Duration::days(42));
        assert_eq!(c.now(), datetime!(2026-02-12 0:00 UTC));
    }
}
