//! Time: the [`Timestamp`] newtype, resolution of log-line times (year and zone
//! inference for classic syslog), and the only place that reads the system
//! clock ([`now`]).

use crate::parse::{RawTime, days_from_civil};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// RFC 3339 in UTC, e.g. `2026-11-21T21:44:25Z`.
    pub fn rfc3339(self) -> String {
        jiff::Timestamp::from_second(self.0).map_or_else(|_| self.0.to_string(), |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    }

    /// [`Timestamp::rfc3339`], `None` for 0: a source's last-line time
    /// before any Postfix or Dovecot line gave it one (other programs'
    /// lines carry no time here).
    pub fn rfc3339_known(self) -> Option<String> {
        (self.0 != 0).then(|| self.rfc3339())
    }
}

/// The wall clock. Everything else gets time passed in.
pub fn now() -> Timestamp {
    Timestamp(jiff::Timestamp::now().as_second())
}

/// Parses `T` of the command line: RFC 3339, or `YYYY-MM-DD` meaning
/// midnight in `tz`.
///
/// # Errors
/// A message naming the expected forms.
pub fn parse_time_arg(s: &str, tz: &TimeZone) -> Result<Timestamp, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(Timestamp(t.as_second()));
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        let z = d.to_zoned(tz.clone()).map_err(|e| e.to_string())?;
        return Ok(Timestamp(z.timestamp().as_second()));
    }
    Err(format!("'{s}' is neither RFC 3339 (2026-11-21T10:00:00Z) nor a date (2026-11-21)"))
}

/// Resolves raw line times to [`Timestamp`]s for one source (file or
/// stream). Classic syslog lines carry neither year nor zone: the year
/// starts at `start_year` and rolls over when the month goes backwards by
/// more than a month (December → January); the zone is `tz`.
#[derive(Clone, Debug)]
pub struct Resolver {
    tz: TimeZone,
    year: i32,
    last_month: u8,
    /// Cache: local (date, hour) → UTC start of that local day, in seconds.
    cache_key: i64,
    cache_offset: i64,
    last: i64,
}

impl Resolver {
    pub fn new(tz: TimeZone, start_year: i32) -> Self {
        Resolver { tz, year: start_year, last_month: 0, cache_key: i64::MIN, cache_offset: 0, last: 0 }
    }

    /// Continues where a checkpoint left off.
    pub fn resume(tz: TimeZone, year: i32, last_month: u8) -> Self {
        Resolver { last_month, ..Resolver::new(tz, year) }
    }

    /// (year, last month) for a checkpoint.
    pub fn state(&self) -> (i32, u8) {
        (self.year, self.last_month)
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    /// The time of the last line resolved (0 before any).
    pub fn last(&self) -> i64 {
        self.last
    }

    pub fn resolve(&mut self, t: RawTime) -> Timestamp {
        let ts = self.resolve_inner(t);
        self.last = ts.0;
        ts
    }

    fn resolve_inner(&mut self, t: RawTime) -> Timestamp {
        match t {
            RawTime::Unix(s) => Timestamp(s),
            RawTime::Bsd { month, day, secs } => {
                if self.last_month != 0 && month + 1 < self.last_month {
                    self.year += 1;
                }
                self.last_month = month;
                let y = self.year;
                self.local(y, month, day, secs)
            }
            RawTime::Local { year, month, day, secs } => self.local(year, month, day, secs),
        }
    }

    fn local(&mut self, y: i32, m: u8, d: u8, secs: u32) -> Timestamp {
        // Consecutive lines share the hour: cache (date, hour) -> day start
        // minus offset, keyed without any date arithmetic.
        let key = ((i64::from(y) * 16 + i64::from(m)) * 32 + i64::from(d)) * 24 + i64::from(secs / 3600);
        if key != self.cache_key {
            self.cache_key = key;
            let days = days_from_civil(y, m, d);
            self.cache_offset = days * 86_400 - self.offset_at(y, m, d, secs / 3600);
        }
        Timestamp(self.cache_offset + i64::from(secs))
    }

    fn offset_at(&self, y: i32, m: u8, d: u8, hour: u32) -> i64 {
        let (Ok(y), Ok(m), Ok(d), Ok(h)) = (i16::try_from(y), i8::try_from(m), i8::try_from(d), i8::try_from(hour)) else {
            return 0;
        };
        let Ok(dt) = jiff::civil::DateTime::new(y, m, d, h, 0, 0, 0) else {
            return 0;
        };
        match self.tz.to_ambiguous_zoned(dt).compatible() {
            Ok(z) => i64::from(z.offset().seconds()),
            Err(_) => 0,
        }
    }
}

/// The starting year for a classic-syslog file last modified at `mtime`
/// whose first line is in `first_month`: a file cannot end before it
/// starts, so a first month after the mtime's month means the previous year.
pub fn start_year_for(mtime: Timestamp, first_month: Option<u8>, tz: &TimeZone) -> i32 {
    let Ok(t) = jiff::Timestamp::from_second(mtime.0) else {
        return 1970;
    };
    let z = t.to_zoned(tz.clone());
    let y = i32::from(z.year());
    match first_month {
        Some(m) if i8::try_from(m).is_ok_and(|m| m > z.month()) => y - 1,
        _ => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_rolls_over_in_december_to_january() {
        let mut r = Resolver::new(TimeZone::UTC, 2025);
        let a = r.resolve(RawTime::Bsd { month: 12, day: 31, secs: 86_399 });
        let b = r.resolve(RawTime::Bsd { month: 1, day: 1, secs: 0 });
        assert_eq!(b.0 - a.0, 1);
        assert_eq!(r.year(), 2026);
        // Out-of-order lines within a month do not roll the year.
        let c = r.resolve(RawTime::Bsd { month: 1, day: 1, secs: 5 });
        assert_eq!(c.0, b.0 + 5);
    }

    #[test]
    fn zone_applies_dst() {
        let tz = TimeZone::get("Europe/Berlin").expect("the system time-zone database (tzdata) has this zone");
        let mut r = Resolver::new(tz, 2023);
        // 2023-03-14 00:00:31 +01:00
        assert_eq!(r.resolve(RawTime::Bsd { month: 3, day: 14, secs: 31 }), Timestamp(1_678_748_431));
        // 2023-07-01 12:00:00 +02:00
        assert_eq!(r.resolve(RawTime::Bsd { month: 7, day: 1, secs: 43_200 }), Timestamp(1_688_205_600));
    }

    #[test]
    fn time_args() {
        assert_eq!(parse_time_arg("2023-03-14T00:00:31+01:00", &TimeZone::UTC), Ok(Timestamp(1_678_748_431)));
        assert_eq!(parse_time_arg("1970-01-02", &TimeZone::UTC), Ok(Timestamp(86_400)));
        assert!(parse_time_arg("yesterday", &TimeZone::UTC).is_err());
    }
}
