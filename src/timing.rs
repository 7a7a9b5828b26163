//! When a schedule is due: pure functions of a schedule's time, what the service remembers
//! of it, and an explicit `now`, generic over the time zone so that tests can pin both.
//!
//! A schedule is owed a run for each daily occurrence of its `HH:MM:00` that is not before
//! the minute in which the service first saw it, and after the occurrence it last served.
//! Missed occurrences are merged into one run, like systemd's `Persistent=true` timers, so
//! neither two cycles in one minute, nor a late cycle, nor a gap of days is counted twice
//! or dropped.
//!
//! A schedule limited to some days of the week (`days=mon-fri`) occurs only on those
//! local calendar days; missed ones merge the same way.
//!
//! Local time has gaps and repeats. An `HH:MM` that does not exist on a spring-forward day
//! occurs at the first instant after the gap; one that exists twice on a fall-back day
//! occurs once, at its first instance. So every calendar day has exactly one occurrence.

use chrono::{DateTime, Datelike, Days, Duration, LocalResult, NaiveDate, TimeZone, Timelike};

use crate::schedule::{Calendar, TimeOfDay};

/// The instant at which `time` occurs on local calendar day `date`.
pub fn occurrence_on<Tz: TimeZone>(tz: &Tz, date: NaiveDate, time: TimeOfDay) -> DateTime<Tz> {
    let mut local = date.and_time(time.to_naive());
    // A gap is at most a few hours (a day for a zone that skipped one); walking minute by
    // minute finds its end without knowing the zone's rules.
    for _ in 0..=(26 * 60) {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => return t,
            LocalResult::Ambiguous(first, _) => return first,
            LocalResult::None => local += Duration::minutes(1),
        }
    }
    // No zone has a gap this long; fall back to reading the wall time as UTC rather than
    // panicking in a long-running service.
    tz.from_utc_datetime(&date.and_time(time.to_naive()))
}

/// The latest occurrence of `when` at or before `now`.
pub fn latest_occurrence<Tz: TimeZone>(
    when: impl Into<Calendar>,
    now: &DateTime<Tz>,
) -> DateTime<Tz> {
    let when = when.into();
    let tz = now.timezone();
    let today = now.date_naive();
    // A week back always holds an allowed day; the day after covers a zone whose
    // occurrence that day was pushed past now by a gap.
    (0..=8)
        .filter_map(|back| today.checked_sub_days(Days::new(back)))
        .filter(|date| when.days.contains(date.weekday()))
        .map(|date| occurrence_on(&tz, date, when.time))
        .find(|t| t <= now)
        .expect("an occurrence eight days back is before now")
}

/// The first occurrence of `when` strictly after `now`.
pub fn next_occurrence<Tz: TimeZone>(
    when: impl Into<Calendar>,
    now: &DateTime<Tz>,
) -> DateTime<Tz> {
    let when = when.into();
    let tz = now.timezone();
    let today = now.date_naive();
    (0..=8)
        .filter_map(|ahead| today.checked_add_days(Days::new(ahead)))
        .filter(|date| when.days.contains(date.weekday()))
        .map(|date| occurrence_on(&tz, date, when.time))
        .find(|t| t > now)
        .expect("an occurrence eight days ahead is after now")
}

/// The start of the minute holding `t`.
pub fn minute_start<Tz: TimeZone>(t: &DateTime<Tz>) -> DateTime<Tz> {
    t.clone()
        .with_nanosecond(0)
        .and_then(|t| t.with_second(0))
        .unwrap_or_else(|| t.clone())
}

/// The occurrence a schedule is owed at `now`, if any.
///
/// `first_seen` is when the service first saw the schedule; `last_served` is the
/// occurrence its last run was for. The result is the occurrence to record as served
/// once the run is done.
pub fn owed<Tz: TimeZone>(
    when: impl Into<Calendar>,
    first_seen: &DateTime<Tz>,
    last_served: Option<&DateTime<Tz>>,
    now: &DateTime<Tz>,
) -> Option<DateTime<Tz>> {
    let latest = latest_occurrence(when, now);
    let seen_in_time = latest >= minute_start(first_seen);
    let not_served = last_served.is_none_or(|served| latest > *served);
    (seen_in_time && not_served).then_some(latest)
}

/// How far ahead of `now` a remembered served occurrence may lie and still count as done:
/// a clock stepped back a little (an NTP correction, a hand fix) must not make the service
/// run that occurrence a second time. Anything further ahead was written by a clock that
/// was wrong, and is treated as now.
pub const STEP_BACK_TOLERANCE: Duration = Duration::hours(2);

/// What the service remembers of a schedule, with times written by a wrong clock brought
/// back to `now` (as systemd clamps a timer's future last trigger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered<Tz: TimeZone> {
    /// When the schedule was first seen, never after `now`.
    pub first_seen: DateTime<Tz>,
    /// The occurrence last served: `now` when it lay further ahead than
    /// [`STEP_BACK_TOLERANCE`].
    pub last_served: Option<DateTime<Tz>>,
    /// Whether a remembered time lay in the future and was changed, for one warning.
    pub clamped: bool,
}

/// Brings remembered times that lie in the future back to `now`.
///
/// A first-seen time after `now` becomes `now`: the schedule counts as seen now, so its
/// next occurrence runs. A served occurrence after `now` is kept when it is at most
/// [`STEP_BACK_TOLERANCE`] ahead (that run was done a moment ago, before the clock went
/// back), and becomes `now` otherwise, so the schedule runs at its next occurrence rather
/// than on the day the wrong clock showed.
pub fn clamp_future<Tz: TimeZone>(
    first_seen: DateTime<Tz>,
    last_served: Option<DateTime<Tz>>,
    now: &DateTime<Tz>,
) -> Remembered<Tz> {
    let mut clamped = false;
    let first_seen = if first_seen > *now {
        clamped = true;
        now.clone()
    } else {
        first_seen
    };
    let last_served = last_served.map(|served| {
        if served.clone() - now.clone() > STEP_BACK_TOLERANCE {
            clamped = true;
            now.clone()
        } else {
            served
        }
    });
    Remembered {
        first_seen,
        last_served,
        clamped,
    }
}

/// When to look at the schedules next: after `cycle`, or at the next occurrence of any of
/// `times` if that comes first, so that a backup starts on its minute, not up to a cycle
/// late.
pub fn next_wake<Tz: TimeZone, C: Into<Calendar>>(
    times: impl IntoIterator<Item = C>,
    now: &DateTime<Tz>,
    cycle: Duration,
) -> DateTime<Tz> {
    times
        .into_iter()
        .map(|time| next_occurrence(time, now))
        .fold(now.clone() + cycle, |a, b| if b < a { b } else { a })
}

/// How long after an occurrence its backup may still be under way (or the machine waking
/// up) before the schedule counts as overdue: a daily schedule is overdue 26 hours after
/// its last success.
pub const OVERDUE_GRACE: Duration = Duration::hours(2);

/// Whether a schedule is overdue at `now`: an occurrence of `when` at least
/// [`OVERDUE_GRACE`] old, not before the minute the schedule was first seen, came after its
/// last successful backup (or it never had one), whatever the reason (the service
/// stopped, the machine off, every run failing).
pub fn overdue<Tz: TimeZone>(
    when: impl Into<Calendar>,
    first_seen: &DateTime<Tz>,
    last_success: Option<&DateTime<Tz>>,
    now: &DateTime<Tz>,
) -> bool {
    let due = latest_occurrence(when, &(now.clone() - OVERDUE_GRACE));
    due >= minute_start(first_seen) && last_success.is_none_or(|ok| *ok < due)
}

#[cfg(test)]
mod tests;
