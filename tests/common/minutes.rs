//! The wall clock's minute, for tests of schedules due now: a test starts only with
//! enough of the minute left, and runs its scenario again when the minute turns.

use std::thread;
use std::time::Duration;

use chrono::{Local, Timelike};

/// The current minute as `HH:MM`, first waiting for the next minute when fewer than
/// `margin` seconds of this one are left, so that what the test does next fits in it.
pub fn current_minute(margin: Duration) -> String {
    let now = Local::now();
    let left = 60 - u64::from(now.second());
    if left < margin.as_secs() {
        thread::sleep(Duration::from_secs(left) + Duration::from_millis(100));
    }
    Local::now().format("%H:%M").to_string()
}

/// Whether the local time is still in minute `hh_mm`.
pub fn still_in(hh_mm: &str) -> bool {
    Local::now().format("%H:%M").to_string() == hh_mm
}

/// Runs a scenario that needs the service to find its schedules due: they are set for
/// the current minute, which must not have turned by the time each `start` returns.
/// The scenario gets the minute and returns `None` when it saw the minute turn too early
/// (or anything else that makes the run prove nothing); it is then run once more, from
/// scratch.
pub fn in_one_minute<T>(margin: Duration, mut scenario: impl FnMut(&str) -> Option<T>) -> T {
    for _ in 0..3 {
        if let Some(result) = scenario(&current_minute(margin)) {
            return result;
        }
    }
    panic!("three runs of the scenario could not go as planned (the minute turned too early)");
}
