//! Which generations a calendar policy keeps, with restic's meaning of
//! `forget --keep-last/--keep-hourly/--keep-daily/--keep-weekly/--keep-monthly/
//! --keep-yearly/--keep-within`: a pure function of the generations' times (local) and the
//! policy, with the reasons each is kept.
//!
//! - `keep-last N` keeps the N newest.
//! - `keep-hourly N` (daily, weekly, monthly, yearly) keeps, for each of the last N hours
//!   (days, ISO weeks, months, years) that have a generation, the newest generation of
//!   that period. When fewer than N such periods exist, the oldest generation is kept as
//!   well, so that the history kept is as long as the policy allows.
//! - `keep-within D` keeps every generation made within D of the newest one (not of now,
//!   so a machine that stopped backing up does not lose its last ones).
//!
//! A generation kept by any rule stays; the others go.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, Months, TimeZone, Timelike};
use serde::{Serialize, Serializer};

/// A policy: `keep=N` (keep-last) and the calendar periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Policy {
    /// Keep this many of the newest.
    pub last: u16,
    /// The calendar rules.
    pub periods: Periods,
}

/// The calendar rules of a policy, as a schedule line holds them (`keep-daily=7`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Periods {
    /// Keep the newest of each of the last this many hours that have one.
    #[serde(rename = "keep_hourly", skip_serializing_if = "is_zero")]
    pub hourly: u16,
    /// Days.
    #[serde(rename = "keep_daily", skip_serializing_if = "is_zero")]
    pub daily: u16,
    /// ISO weeks.
    #[serde(rename = "keep_weekly", skip_serializing_if = "is_zero")]
    pub weekly: u16,
    /// Months.
    #[serde(rename = "keep_monthly", skip_serializing_if = "is_zero")]
    pub monthly: u16,
    /// Years.
    #[serde(rename = "keep_yearly", skip_serializing_if = "is_zero")]
    pub yearly: u16,
    /// Keep all made within this long of the newest.
    #[serde(rename = "keep_within", skip_serializing_if = "Option::is_none")]
    pub within: Option<Within>,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

impl Periods {
    /// Whether any calendar rule is set.
    pub fn any(&self) -> bool {
        self.hourly + self.daily + self.weekly + self.monthly + self.yearly > 0
            || self.within.is_some()
    }

    /// The counted rules with their counts, in policy order.
    pub fn counts(&self) -> [(Rule, u16); 5] {
        [
            (Rule::Hourly, self.hourly),
            (Rule::Daily, self.daily),
            (Rule::Weekly, self.weekly),
            (Rule::Monthly, self.monthly),
            (Rule::Yearly, self.yearly),
        ]
    }

    /// The count of `rule` (one of the counted ones).
    pub fn count_mut(&mut self, rule: Rule) -> Option<&mut u16> {
        Some(match rule {
            Rule::Hourly => &mut self.hourly,
            Rule::Daily => &mut self.daily,
            Rule::Weekly => &mut self.weekly,
            Rule::Monthly => &mut self.monthly,
            Rule::Yearly => &mut self.yearly,
            Rule::Last | Rule::Within => return None,
        })
    }
}

/// Why a generation is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    /// `keep-last` (`keep=N`).
    Last,
    /// `keep-hourly`.
    Hourly,
    /// `keep-daily`.
    Daily,
    /// `keep-weekly`.
    Weekly,
    /// `keep-monthly`.
    Monthly,
    /// `keep-yearly`.
    Yearly,
    /// `keep-within`.
    Within,
}

impl Rule {
    /// The option that states the rule.
    pub fn option(self) -> &'static str {
        match self {
            Rule::Last => "keep",
            Rule::Hourly => "keep-hourly",
            Rule::Daily => "keep-daily",
            Rule::Weekly => "keep-weekly",
            Rule::Monthly => "keep-monthly",
            Rule::Yearly => "keep-yearly",
            Rule::Within => "keep-within",
        }
    }
}

/// A period of time, as `keep-within` takes it: years, months, weeks, days and hours, in
/// that order, e.g. `1y6m`, `2w`, `10d`, `36h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Within {
    years: u32,
    months: u32,
    days: u32,
    hours: u32,
}

/// Why a `keep-within` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadWithin(pub String);

impl fmt::Display for BadWithin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a duration such as 10d, 2w, 6m or 1y6m (y, m, w, d and h, in that \
             order)",
            self.0
        )
    }
}

impl std::error::Error for BadWithin {}

impl FromStr for Within {
    type Err = BadWithin;

    fn from_str(text: &str) -> Result<Self, BadWithin> {
        let bad = || BadWithin(text.to_owned());
        let mut within = Within::default();
        let mut rest = text;
        let mut last_unit = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (number, tail) = rest.split_at(digits);
            let unit = tail.chars().next().ok_or_else(bad)?;
            let order = "ymwdh".find(unit).ok_or_else(bad)? + 1;
            if number.is_empty() || number.len() > 5 || order <= last_unit {
                return Err(bad());
            }
            let n: u32 = number.parse().map_err(|_| bad())?;
            match unit {
                'y' => within.years = n,
                'm' => within.months = n,
                'w' => within.days += 7 * n,
                'd' => within.days += n,
                _ => within.hours = n,
            }
            last_unit = order;
            rest = &tail[1..];
        }
        if within == Within::default() {
            return Err(bad());
        }
        Ok(within)
    }
}

impl fmt::Display for Within {
    /// In one form: weeks written as days, units that are zero left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Within {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Within {
    /// The instant this long before `t`, by the calendar (a month back from 31 March is
    /// the last day of February).
    fn before<Tz: TimeZone>(&self, t: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        t.clone()
            .checked_sub_months(Months::new(self.years * 12 + self.months))?
            .checked_sub_days(Days::new(u64::from(self.days)))?
            .checked_sub_signed(chrono::Duration::hours(i64::from(self.hours)))
    }
}

/// For each generation, given by the local time it was made, newest first: the rules that
/// keep it, in policy order; an empty list means it is removed.
pub fn apply<Tz: TimeZone>(newest_first: &[DateTime<Tz>], policy: &Policy) -> Vec<Vec<Rule>> {
    type Period<Tz> = fn(&DateTime<Tz>, usize) -> i64;
    let p = &policy.periods;
    let periods: [(Rule, u16, Period<Tz>); 6] = [
        (Rule::Last, policy.last, |_, nr| nr as i64),
        (Rule::Hourly, p.hourly, |t, _| {
            day_of(t) * 100 + i64::from(t.hour())
        }),
        (Rule::Daily, p.daily, |t, _| day_of(t)),
        (Rule::Weekly, p.weekly, |t, _| {
            let week = t.iso_week();
            i64::from(week.year()) * 100 + i64::from(week.week())
        }),
        (Rule::Monthly, p.monthly, |t, _| {
            i64::from(t.year()) * 100 + i64::from(t.month())
        }),
        (Rule::Yearly, p.yearly, |t, _| i64::from(t.year())),
    ];
    let mut left: Vec<u16> = periods.iter().map(|(_, n, _)| *n).collect();
    let mut seen: Vec<Option<i64>> = vec![None; periods.len()];
    let within = match (&p.within, newest_first.first()) {
        (Some(within), Some(newest)) => within.before(newest),
        _ => None,
    };
    let oldest = newest_first.len().saturating_sub(1);
    newest_first
        .iter()
        .enumerate()
        .map(|(nr, made)| {
            let mut kept = Vec::new();
            if within.as_ref().is_some_and(|from| made > from) {
                kept.push(Rule::Within);
            }
            for (i, (rule, _, period)) in periods.iter().enumerate() {
                if left[i] == 0 {
                    continue;
                }
                let p = period(made, nr);
                // The oldest is kept too while a rule has periods left: the longest
                // history the policy allows.
                if seen[i] != Some(p) || nr == oldest {
                    seen[i] = Some(p);
                    left[i] -= 1;
                    kept.push(*rule);
                }
            }
            kept.sort_by_key(|r| *r as u8);
            kept
        })
        .collect()
}

/// A number for the local calendar day of `t`.
fn day_of<Tz: TimeZone>(t: &DateTime<Tz>) -> i64 {
    i64::from(t.year()) * 10_000 + i64::from(t.month()) * 100 + i64::from(t.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, NaiveDate};
    use chrono_tz::Europe::Paris;

    fn days_back(n: i64) -> Vec<DateTime<chrono_tz::Tz>> {
        // Daily at 02:00, newest on Tuesday 1 December 2026.
        let newest = NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(2, 0, 0)
            .unwrap();
        (0..n)
            .map(|d| {
                Paris
                    .from_local_datetime(&(newest - Duration::days(d)))
                    .earliest()
                    .unwrap()
            })
            .collect()
    }

    fn policy(set: impl FnOnce(&mut Periods)) -> Policy {
        let mut policy = Policy::default();
        set(&mut policy.periods);
        policy
    }

    fn kept(times: &[DateTime<chrono_tz::Tz>], policy: &Policy) -> Vec<String> {
        apply(times, policy)
            .iter()
            .zip(times)
            .filter(|(rules, _)| !rules.is_empty())
            .map(|(_, t)| t.format("%Y-%m-%d").to_string())
            .collect()
    }

    #[test]
    fn keep_last_is_the_newest_n() {
        let times = days_back(10);
        let policy = Policy {
            last: 3,
            ..Policy::default()
        };
        assert_eq!(
            kept(&times, &policy),
            ["2026-12-01", "2026-11-30", "2026-11-29"]
        );
    }

    #[test]
    fn daily_weekly_and_monthly_keep_the_newest_of_each_period_and_the_oldest() {
        let times = days_back(60);
        let weekly = policy(|p| {
            p.weekly = 3;
        });
        // ISO weeks end on Sunday: 29 Nov and 22 Nov are the newest of the weeks before
        // the current one.
        assert_eq!(
            kept(&times, &weekly),
            ["2026-12-01", "2026-11-29", "2026-11-22"]
        );
        let monthly = policy(|p| {
            p.monthly = 6;
        });
        // Only three months have one: all three, and the oldest of all.
        assert_eq!(
            kept(&times, &monthly),
            ["2026-12-01", "2026-11-30", "2026-10-31", "2026-10-03"]
        );
        let both = policy(|p| {
            p.daily = 2;
            p.weekly = 2;
        });
        let rules = apply(&times, &both);
        assert_eq!(rules[0], [Rule::Daily, Rule::Weekly]);
        assert_eq!(rules[1], [Rule::Daily]);
        assert_eq!(rules[2], [Rule::Weekly]);
        assert!(rules[3..].iter().all(Vec::is_empty));
    }

    #[test]
    fn keep_within_counts_from_the_newest() {
        let times = days_back(30);
        let within = policy(|p| {
            p.within = Some("10d".parse().unwrap());
        });
        let kept = kept(&times, &within);
        assert_eq!(kept.len(), 10);
        assert_eq!(kept.last().unwrap(), "2026-11-22");
    }

    #[test]
    fn durations_read_and_write_back() {
        for (given, written) in [
            ("10d", "10d"),
            ("2w", "14d"),
            ("1y6m", "1y6m"),
            ("36h", "36h"),
        ] {
            assert_eq!(given.parse::<Within>().unwrap().to_string(), written);
        }
        for bad in [
            "", "d", "10", "1d2y", "10x", "0d", "1.5d", "-1d", "1w1w", "999999d",
        ] {
            assert!(bad.parse::<Within>().is_err(), "{bad:?}");
        }
    }
}
