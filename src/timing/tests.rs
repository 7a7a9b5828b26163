use super::*;
use chrono::Utc;
use chrono_tz::{America::New_York, Europe::Paris, Tz};

fn t(h: u8, m: u8) -> TimeOfDay {
    TimeOfDay::new(h, m).unwrap()
}

fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Tz> {
    tz.with_ymd_and_hms(y, mo, d, h, mi, s).earliest().unwrap()
}

/// Both instants of a wall-clock time that the fall-back night repeats.
fn twice(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> (DateTime<Tz>, DateTime<Tz>) {
    let local = tz.with_ymd_and_hms(y, mo, d, h, mi, 0);
    (local.earliest().unwrap(), local.latest().unwrap())
}

fn paris(mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Tz> {
    at(Paris, 2026, mo, d, h, mi, s)
}

#[test]
fn due_in_its_minute_once_even_with_two_cycles_in_it() {
    let seen = paris(2, 8, 16, 0, 10);
    let first = paris(2, 8, 16, 7, 2);
    let served = owed(t(16, 7), &seen, None, &first).unwrap();
    assert_eq!(served, paris(2, 8, 16, 7, 0));
    // A second cycle 45 s later, still at 16:07, owes nothing.
    let second = paris(2, 8, 16, 7, 47);
    assert_eq!(owed(t(16, 7), &seen, Some(&served), &second), None);
    // Nor does any moment until the next day's 16:07.
    assert_eq!(
        owed(t(16, 7), &seen, Some(&served), &paris(2, 9, 16, 6, 59)),
        None
    );
    assert_eq!(
        owed(t(16, 7), &seen, Some(&served), &paris(2, 9, 16, 7, 0)),
        Some(paris(2, 9, 16, 7, 0))
    );
}

#[test]
fn a_schedule_first_seen_during_its_minute_is_due_then() {
    // Created at 16:07:40 for 16:07: the occurrence at 16:07:00 counts.
    let seen = paris(2, 8, 16, 7, 40);
    assert_eq!(
        owed(t(16, 7), &seen, None, &seen),
        Some(paris(2, 8, 16, 7, 0))
    );
}

#[test]
fn a_schedule_first_seen_after_its_time_waits_for_tomorrow() {
    let seen = paris(2, 8, 16, 8, 0);
    assert_eq!(owed(t(16, 7), &seen, None, &seen), None);
    assert_eq!(owed(t(16, 7), &seen, None, &paris(2, 9, 16, 6, 0)), None);
    assert!(owed(t(16, 7), &seen, None, &paris(2, 9, 16, 7, 0)).is_some());
}

#[test]
fn a_late_cycle_still_runs_it_once() {
    let seen = paris(2, 8, 9, 0, 0);
    // The previous cycle was at 16:06:50, then a long backup: next look at 16:09.
    let late = paris(2, 8, 16, 9, 0);
    let served = owed(t(16, 7), &seen, None, &late).unwrap();
    assert_eq!(served, paris(2, 8, 16, 7, 0));
    assert_eq!(
        owed(t(16, 7), &seen, Some(&served), &paris(2, 8, 16, 9, 45)),
        None
    );
}

#[test]
fn days_missed_in_a_row_run_once() {
    let seen = paris(2, 1, 9, 0, 0);
    let served = paris(2, 1, 16, 7, 0);
    let back = paris(2, 5, 10, 0, 0);
    let run = owed(t(16, 7), &seen, Some(&served), &back).unwrap();
    assert_eq!(run, paris(2, 4, 16, 7, 0));
    assert_eq!(owed(t(16, 7), &seen, Some(&run), &back), None);
}

#[test]
fn across_midnight_and_month_and_year_ends() {
    let seen = paris(1, 1, 0, 0, 0);
    let before = at(Paris, 2026, 12, 31, 23, 59, 30);
    assert_eq!(
        latest_occurrence(t(0, 0), &before),
        at(Paris, 2026, 12, 31, 0, 0, 0)
    );
    assert_eq!(
        next_occurrence(t(0, 0), &before),
        at(Paris, 2027, 1, 1, 0, 0, 0)
    );
    let served = at(Paris, 2026, 12, 31, 23, 59, 0);
    assert_eq!(owed(t(23, 59), &seen, Some(&served), &before), None);
    assert_eq!(
        owed(
            t(23, 59),
            &seen,
            Some(&served),
            &at(Paris, 2027, 1, 1, 0, 0, 5)
        ),
        None
    );
    // 28 February to 1 March.
    assert_eq!(
        next_occurrence(t(0, 30), &paris(2, 28, 23, 0, 0)),
        paris(3, 1, 0, 30, 0)
    );
    // A 00:00 schedule first seen at 23:59:50 is owed at midnight.
    let late_seen = paris(4, 30, 23, 59, 50);
    assert_eq!(owed(t(0, 0), &late_seen, None, &late_seen), None);
    assert_eq!(
        owed(t(0, 0), &late_seen, None, &paris(5, 1, 0, 0, 1)),
        Some(paris(5, 1, 0, 0, 0))
    );
}

#[test]
fn a_time_in_the_spring_gap_runs_at_the_end_of_the_gap() {
    // Paris, 29 March 2026: 02:00 CET jumps to 03:00 CEST.
    let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
    let when = occurrence_on(&Paris, day, t(2, 30));
    assert_eq!(when, paris(3, 29, 3, 0, 0));
    assert_eq!(
        when.with_timezone(&Utc).to_rfc3339(),
        "2026-03-29T01:00:00+00:00"
    );
    // New York, 8 March 2026: 02:00 EST jumps to 03:00 EDT.
    let ny_day = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
    assert_eq!(
        occurrence_on(&New_York, ny_day, t(2, 15)),
        at(New_York, 2026, 3, 8, 3, 0, 0)
    );
    // It is owed once on that day, and the next day at 02:30 again.
    let seen = paris(3, 28, 12, 0, 0);
    let run = owed(t(2, 30), &seen, None, &paris(3, 29, 3, 0, 10)).unwrap();
    assert_eq!(run, paris(3, 29, 3, 0, 0));
    assert_eq!(
        owed(t(2, 30), &seen, Some(&run), &paris(3, 29, 3, 30, 0)),
        None
    );
    assert_eq!(
        next_occurrence(t(2, 30), &paris(3, 29, 3, 0, 10)),
        paris(3, 30, 2, 30, 0)
    );
}

#[test]
fn a_time_that_happens_twice_in_the_fall_runs_once() {
    // New York, 1 November 2026: 02:00 EDT falls back to 01:00 EST.
    let (first, second) = twice(New_York, 2026, 11, 1, 1, 30);
    assert_eq!(second - first, Duration::hours(1));
    let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    assert_eq!(occurrence_on(&New_York, day, t(1, 30)), first);
    let seen = at(New_York, 2026, 10, 31, 12, 0, 0);
    let run = owed(t(1, 30), &seen, None, &first).unwrap();
    assert_eq!(run, first);
    // At the second 01:30 nothing more is owed, and the next run is tomorrow.
    assert_eq!(owed(t(1, 30), &seen, Some(&run), &second), None);
    assert_eq!(
        next_occurrence(t(1, 30), &second),
        at(New_York, 2026, 11, 2, 1, 30, 0)
    );
    // Paris, 25 October 2026: 03:00 CEST falls back to 02:00 CET.
    let (paris_first, paris_second) = twice(Paris, 2026, 10, 25, 2, 30);
    let seen = paris(10, 24, 12, 0, 0);
    let run = owed(t(2, 30), &seen, None, &paris_first).unwrap();
    assert_eq!(owed(t(2, 30), &seen, Some(&run), &paris_second), None);
}

#[test]
fn the_service_wakes_on_the_next_due_minute_or_after_a_cycle() {
    let cycle = Duration::seconds(45);
    let now = paris(6, 1, 16, 6, 30);
    // 16:07 comes in 30 s, before the cycle ends: wake exactly then.
    assert_eq!(
        next_wake([t(16, 7), t(9, 0)], &now, cycle),
        paris(6, 1, 16, 7, 0)
    );
    // Nothing due within 45 s: a plain cycle.
    assert_eq!(next_wake([t(16, 8)], &now, cycle), paris(6, 1, 16, 7, 15));
    assert_eq!(
        next_wake::<_, TimeOfDay>([], &now, cycle),
        paris(6, 1, 16, 7, 15)
    );
    // Just after midnight's occurrence, the next one is tomorrow's.
    let after = paris(6, 1, 0, 0, 0);
    assert_eq!(next_wake([t(0, 0)], &after, cycle), paris(6, 1, 0, 0, 45));
}

#[test]
fn times_written_by_a_clock_years_ahead_are_taken_as_now() {
    // Booted in 2031 by a dead RTC battery, then corrected by NTP.
    let seen = at(Paris, 2031, 5, 1, 9, 0, 0);
    let served = at(Paris, 2031, 5, 1, 16, 7, 0);
    let now = paris(6, 1, 10, 0, 0);
    let fixed = clamp_future(seen, Some(served), &now);
    assert!(fixed.clamped);
    assert_eq!(fixed.first_seen, now);
    assert_eq!(fixed.last_served, Some(now));
    // So the schedule is owed at its next occurrence, today, and once only.
    let fixed_served = fixed.last_served.as_ref();
    assert_eq!(owed(t(16, 7), &fixed.first_seen, fixed_served, &now), None);
    let due = paris(6, 1, 16, 7, 0);
    let run = owed(t(16, 7), &fixed.first_seen, fixed_served, &due).unwrap();
    assert_eq!(run, due);
    // Without the clamp it would wait until 2031.
    assert_eq!(owed(t(16, 7), &seen, Some(&served), &due), None);
    // Once clamped, nothing is in the future any more: one warning, not one a look.
    let again = clamp_future(fixed.first_seen, Some(run), &due);
    assert!(!again.clamped);
}

#[test]
fn a_clock_stepped_back_an_hour_neither_repeats_nor_skips_a_run() {
    let seen = paris(5, 1, 9, 0, 0);
    // Served at 16:07, then at 16:07:30 the clock goes back to 15:07:30.
    let served = paris(6, 1, 16, 7, 0);
    let back = paris(6, 1, 15, 7, 30);
    let kept = clamp_future(seen, Some(served), &back);
    assert!(!kept.clamped);
    assert_eq!(kept.last_served, Some(served));
    for now in [back, paris(6, 1, 16, 7, 0), paris(6, 1, 16, 30, 0)] {
        assert_eq!(owed(t(16, 7), &seen, Some(&served), &now), None);
    }
    // The next day runs as usual.
    assert_eq!(
        owed(t(16, 7), &seen, Some(&served), &paris(6, 2, 16, 7, 0)),
        Some(paris(6, 2, 16, 7, 0))
    );
    // A schedule not yet served that day is not skipped: it runs at its time.
    let yesterday = paris(5, 31, 16, 30, 0);
    assert_eq!(owed(t(16, 30), &seen, Some(&yesterday), &back), None);
    let other = owed(t(16, 30), &seen, Some(&yesterday), &paris(6, 1, 16, 30, 0));
    assert_eq!(other, Some(paris(6, 1, 16, 30, 0)));
}

#[test]
fn the_clamp_across_midnight_and_a_dst_change() {
    // 00:10 served, clock back 40 minutes to 23:30 the day before: kept.
    let served = paris(6, 2, 0, 10, 0);
    let now = paris(6, 1, 23, 30, 0);
    let seen = paris(5, 1, 9, 0, 0);
    let kept = clamp_future(seen, Some(served), &now);
    assert_eq!(kept.last_served, Some(served));
    assert_eq!(
        owed(t(0, 10), &seen, Some(&served), &paris(6, 2, 0, 10, 0)),
        None
    );
    // Three hours across midnight is a wrong clock: taken as now, tomorrow runs.
    let wrong = paris(6, 2, 2, 31, 0);
    let fixed = clamp_future(seen, Some(wrong), &now);
    assert!(fixed.clamped);
    assert_eq!(fixed.last_served, Some(now));
    // Over the fall-back night the wall clock repeats 02:00-03:00, but instants do not
    // go back: a run served at the first 02:30 is not in the future at the second.
    let (first, second) = twice(Paris, 2026, 10, 25, 2, 30);
    let over = clamp_future(seen, Some(first), &second);
    assert!(!over.clamped);
    // In the spring gap, a first-seen time one hour ahead in local terms is still
    // compared as an instant.
    let after_gap = paris(3, 29, 3, 0, 0);
    let fixed = clamp_future(paris(3, 29, 3, 30, 0), None, &after_gap);
    assert!(fixed.clamped);
    assert_eq!(fixed.first_seen, after_gap);
}

#[test]
fn the_next_occurrence_is_strictly_after_now() {
    let now = paris(6, 1, 16, 7, 0);
    assert_eq!(next_occurrence(t(16, 7), &now), paris(6, 2, 16, 7, 0));
    assert_eq!(latest_occurrence(t(16, 7), &now), now);
    assert_eq!(next_occurrence(t(16, 8), &now), paris(6, 1, 16, 8, 0));
}

fn on(days: &str, h: u8, m: u8) -> Calendar {
    Calendar {
        time: t(h, m),
        days: days.parse().unwrap(),
    }
}

#[test]
fn a_weekdays_schedule_skips_the_week_end_and_crosses_it_at_midnight() {
    // 2026-11-27 is a Friday.
    let weekdays = on("mon-fri", 2, 0);
    assert_eq!(
        latest_occurrence(weekdays, &paris(11, 28, 10, 0, 0)),
        paris(11, 27, 2, 0, 0)
    );
    assert_eq!(
        next_occurrence(weekdays, &paris(11, 27, 2, 0, 0)),
        paris(11, 30, 2, 0, 0)
    );
    // Sunday at midnight: still the Friday's; Monday's at its time.
    let seen = paris(11, 20, 12, 0, 0);
    let friday = paris(11, 27, 2, 0, 0);
    assert_eq!(
        owed(weekdays, &seen, Some(&friday), &paris(11, 30, 0, 0, 0)),
        None
    );
    assert_eq!(
        owed(weekdays, &seen, Some(&friday), &paris(11, 30, 1, 59, 59)),
        None
    );
    assert_eq!(
        owed(weekdays, &seen, Some(&friday), &paris(11, 30, 2, 0, 0)),
        Some(paris(11, 30, 2, 0, 0))
    );
    // The week end owes nothing, at any hour.
    for (d, h) in [(28, 2), (28, 23), (29, 2), (29, 23)] {
        assert_eq!(
            owed(weekdays, &seen, Some(&friday), &paris(11, d, h, 0, 0)),
            None
        );
    }
}

#[test]
fn days_missed_in_a_row_on_allowed_days_merge_into_one_run() {
    // Served on Monday 23 November; the machine was off until the next Wednesday.
    let mwf = on("mon,wed,fri", 9, 30);
    let seen = paris(11, 1, 0, 0, 0);
    let served = paris(11, 23, 9, 30, 0);
    let back = paris(12, 2, 12, 0, 0);
    assert_eq!(
        owed(mwf, &seen, Some(&served), &back),
        Some(paris(12, 2, 9, 30, 0))
    );
    // Back on a Tuesday instead: the Monday's occurrence is owed, once.
    let tuesday = paris(12, 1, 8, 0, 0);
    let missed = owed(mwf, &seen, Some(&served), &tuesday).unwrap();
    assert_eq!(missed, paris(11, 30, 9, 30, 0));
    assert_eq!(owed(mwf, &seen, Some(&missed), &tuesday), None);
    assert_eq!(next_occurrence(mwf, &tuesday), paris(12, 2, 9, 30, 0));
}

#[test]
fn a_days_schedule_in_a_skipped_hour_runs_after_the_gap_on_its_day() {
    // Paris, Sunday 29 March 2026: 02:00 jumps to 03:00.
    let sundays = on("sun", 2, 30);
    assert_eq!(
        next_occurrence(sundays, &paris(3, 23, 12, 0, 0)),
        paris(3, 29, 3, 0, 0)
    );
    assert_eq!(
        next_occurrence(sundays, &paris(3, 29, 3, 0, 0)),
        paris(4, 5, 2, 30, 0)
    );
    // A schedule every day stays the same through the conversion.
    assert_eq!(
        next_occurrence(t(2, 30), &paris(3, 28, 12, 0, 0)),
        next_occurrence(on("mon-sun", 2, 30), &paris(3, 28, 12, 0, 0))
    );
}

#[test]
fn the_next_wake_comes_on_the_next_allowed_day() {
    let now = paris(11, 28, 10, 0, 0);
    let wake = next_wake([on("mon-fri", 2, 0)], &now, Duration::seconds(45));
    assert_eq!(wake, now + Duration::seconds(45));
    let wake = next_wake(
        [on("sat", 10, 0)],
        &paris(11, 28, 9, 59, 50),
        Duration::seconds(45),
    );
    assert_eq!(wake, paris(11, 28, 10, 0, 0));
}

#[test]
fn a_daily_schedule_is_overdue_26_hours_after_its_last_success() {
    let seen = paris(11, 1, 0, 0, 0);
    let ok = paris(11, 10, 2, 0, 5);
    // Today's 02:00 run failed: still within the grace at 03:59, overdue from 04:00.
    assert!(!overdue(
        t(2, 0),
        &seen,
        Some(&ok),
        &paris(11, 11, 3, 59, 0)
    ));
    assert!(overdue(t(2, 0), &seen, Some(&ok), &paris(11, 11, 4, 0, 0)));
    // Today's ran: not overdue, until tomorrow 04:00.
    let today = paris(11, 11, 2, 0, 7);
    assert!(!overdue(
        t(2, 0),
        &seen,
        Some(&today),
        &paris(11, 12, 3, 0, 0)
    ));
    assert!(overdue(
        t(2, 0),
        &seen,
        Some(&today),
        &paris(11, 12, 4, 0, 0)
    ));
    // Never run: overdue once an occurrence since it was first seen is past its grace.
    let new = paris(11, 11, 3, 0, 0);
    assert!(!overdue(t(2, 0), &new, None, &paris(11, 12, 3, 59, 0)));
    assert!(overdue(t(2, 0), &new, None, &paris(11, 12, 4, 0, 0)));
}

#[test]
fn a_weekdays_schedule_is_not_overdue_over_the_week_end() {
    let seen = paris(11, 1, 0, 0, 0);
    let friday = paris(11, 27, 2, 0, 5);
    let weekdays = on("mon-fri", 2, 0);
    assert!(!overdue(
        weekdays,
        &seen,
        Some(&friday),
        &paris(11, 29, 23, 0, 0)
    ));
    assert!(!overdue(
        weekdays,
        &seen,
        Some(&friday),
        &paris(11, 30, 3, 0, 0)
    ));
    assert!(overdue(
        weekdays,
        &seen,
        Some(&friday),
        &paris(11, 30, 4, 0, 0)
    ));
}
