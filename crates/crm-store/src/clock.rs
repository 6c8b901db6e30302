//! Time for the store: the system clock, a hand-driven clock for tests, and
//! the one text form every timestamp column uses.
//!
//! Leases are the reason the store needs "now" at all: expiry must be judged
//! by the same clock that wrote it, and tests must be able to move it.

use chrono::{DateTime, SecondsFormat, Utc};
use crm_domain::ports::{Clock, StoreError};
use std::sync::Mutex;

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to (tests of lease expiry).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    pub fn advance(&self, by: std::time::Duration) {
        let by = chrono::TimeDelta::from_std(by).unwrap_or(chrono::TimeDelta::MAX);
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = now
            .checked_add_signed(by)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// RFC 3339 in UTC with nine fractional digits: fixed width, so comparing
/// the text compares the times (leases are judged in SQL this way), and
/// lossless, so records read back equal to what was written.
pub(crate) fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(crate) fn parse_ts(column: &str, s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt {
            detail: format!("column {column} holds '{s}', not a time: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_sort_as_text_and_round_trip() {
        let a = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let b = a + chrono::TimeDelta::nanoseconds(1);
        let c = a + chrono::TimeDelta::seconds(10);
        assert!(ts(&a) < ts(&b) && ts(&b) < ts(&c));
        assert_eq!(ts(&a).len(), ts(&b).len());
        assert_eq!(parse_ts("t", &ts(&b)).unwrap(), b);
        assert!(parse_ts("t", "yesterday").is_err());
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = Utc::now();
        let c = ManualClock::new(start);
        assert_eq!(c.now(), start);
        c.advance(std::time::Duration::from_secs(5));
        assert_eq!(c.now(), start + chrono::TimeDelta::seconds(5));
    }
}
