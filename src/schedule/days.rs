//! The days of the week a schedule runs on: `days=mon-fri`, `days=sat,sun`,
//! `days=mon,wed,fri`, as cron's day-of-week field and systemd's `OnCalendar=Mon..Fri`
//! say it, in local time. A line without it runs every day.

use std::fmt;
use std::str::FromStr;

use chrono::Weekday;
use serde::{Serialize, Serializer};

/// The names, Monday first, as they are written.
const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A set of days of the week, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Weekdays {
    /// Bit 0 for Monday up to bit 6 for Sunday.
    bits: u8,
}

impl Weekdays {
    /// Every day of the week: a daily schedule.
    pub const EVERY_DAY: Weekdays = Weekdays { bits: 0x7f };

    /// Whether the schedule runs on `day`.
    pub fn contains(self, day: Weekday) -> bool {
        self.bits & (1 << day.num_days_from_monday()) != 0
    }

    /// Whether every day is in the set.
    pub fn is_every_day(&self) -> bool {
        *self == Self::EVERY_DAY
    }
}

impl Default for Weekdays {
    fn default() -> Self {
        Self::EVERY_DAY
    }
}

/// Why a `days=` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadDays(pub String);

impl fmt::Display for BadDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "days={:?} is not a list of days such as mon-fri, sat,sun or mon,wed,fri",
            crate::schedule::shown(&self.0)
        )
    }
}

impl std::error::Error for BadDays {}

fn day(name: &str) -> Option<u8> {
    NAMES.iter().position(|n| *n == name).map(|i| i as u8)
}

impl FromStr for Weekdays {
    type Err = BadDays;

    /// Days by their three-letter names, lower case, separated by commas, and ranges of
    /// them (`mon-fri`; `fri-mon` wraps round the week end). A day given twice is one day.
    fn from_str(text: &str) -> Result<Self, BadDays> {
        let bad = || BadDays(text.to_owned());
        let mut bits = 0u8;
        for part in text.split(',') {
            let (from, to) = match part.split_once('-') {
                Some((from, to)) => (day(from).ok_or_else(bad)?, day(to).ok_or_else(bad)?),
                None => {
                    let one = day(part).ok_or_else(bad)?;
                    (one, one)
                }
            };
            let mut d = from;
            loop {
                bits |= 1 << d;
                if d == to {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
        Ok(Weekdays { bits })
    }
}

impl fmt::Display for Weekdays {
    /// The days in a fixed form: runs of three days or more as ranges, Monday first
    /// (`mon-fri`, `sat,sun`, `mon,wed-fri`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut d = 0;
        while d < 7 {
            if self.bits & (1 << d) == 0 {
                d += 1;
                continue;
            }
            let start = d;
            while d + 1 < 7 && self.bits & (1 << (d + 1)) != 0 {
                d += 1;
            }
            match d - start {
                0 => parts.push(NAMES[start].to_owned()),
                1 => parts.extend([NAMES[start].to_owned(), NAMES[d].to_owned()]),
                _ => parts.push(format!("{}-{}", NAMES[start], NAMES[d])),
            }
            d += 1;
        }
        f.write_str(&parts.join(","))
    }
}

impl Serialize for Weekdays {
    /// As the line writes it: `"mon-fri"`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(text: &str) -> Weekdays {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn ranges_lists_and_wraps_read_and_write_back_in_one_form() {
        for (given, written) in [
            ("mon-fri", "mon-fri"),
            ("sat,sun", "sat,sun"),
            ("mon,wed,fri", "mon,wed,fri"),
            ("fri-mon", "mon,fri-sun"),
            ("wed,mon,tue", "mon-wed"),
            ("sun", "sun"),
            ("mon-sun", "mon-sun"),
            ("mon,mon", "mon"),
        ] {
            assert_eq!(days(given).to_string(), written, "{given}");
            assert_eq!(days(written), days(given), "{written}");
        }
        assert!(days("mon-sun").is_every_day());
        assert!(!days("mon-sat").is_every_day());
        let weekdays = days("mon-fri");
        assert!(weekdays.contains(Weekday::Fri));
        assert!(!weekdays.contains(Weekday::Sat));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "Mon",
            "monday",
            "mon-",
            "-fri",
            "mon,,fri",
            "mon fri",
            "1-5",
            "mon-fri-sun",
        ] {
            assert_eq!(
                bad.parse::<Weekdays>(),
                Err(BadDays(bad.to_owned())),
                "{bad:?}"
            );
        }
    }
}
