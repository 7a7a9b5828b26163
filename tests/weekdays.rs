//! Schedules for some days of the week (`days=mon-fri`), under a fake clock: run on their
//! days only, skip the others, catch up once after days missed, and `status` shows the
//! next allowed day.

mod common;

use common::TestHome;
use common::clock::{Clock, libfaketime};

const DONE: &str = "Backup done for src in backups/wd.tar";

fn runs(home: &TestHome) -> usize {
    common::count_messages(&home.service_log(), DONE)
}

fn next_run(clock: &Clock, home: &TestHome) -> String {
    let (code, out) = clock.manager(home, &["status"]);
    assert_eq!(code, Some(3), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("   next run:"))
        .unwrap_or_else(|| panic!("{out}"));
    line.trim_start_matches("   next run:").trim().to_owned()
}

#[test]
fn a_weekdays_schedule_runs_monday_to_friday_and_catches_up_once() {
    let Some(lib) = libfaketime() else { return };
    let home = TestHome::new();
    home.write("src/f", "data");
    // Thursday 26 November 2026, in the evening (the clock is UTC).
    let clock = Clock::new(lib, &home, "2026-11-26 20:00:00");
    let (code, _) = clock.manager(&home, &["create", "--days", "mon-fri", "src;02:00;wd"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        home.schedule_bytes().unwrap(),
        b"src;02:00;wd;days=mon-fri\n"
    );
    assert_eq!(next_run(&clock, &home), "27/11/2026 02:00");

    // Friday: runs. Saturday and Sunday: nothing, at any hour.
    for (at, expected) in [
        ("2026-11-27 02:00:05", 1),
        ("2026-11-27 23:00:00", 1),
        ("2026-11-28 02:00:05", 1),
        ("2026-11-29 02:00:05", 1),
        ("2026-11-29 23:59:00", 1),
    ] {
        clock.set(at);
        clock.service_once(&home);
        assert_eq!(runs(&home), expected, "at {at}");
    }
    assert_eq!(next_run(&clock, &home), "30/11/2026 02:00");
    // Monday: runs again.
    clock.set("2026-11-30 02:00:05");
    clock.service_once(&home);
    assert_eq!(runs(&home), 2);

    // Off from Monday to Thursday noon: Tuesday, Wednesday and Thursday merge into one
    // run, for Thursday's occurrence, said to be late.
    clock.set("2026-12-03 12:00:30");
    clock.service_once(&home);
    assert_eq!(runs(&home), 3);
    assert!(
        common::has_message(
            &home.service_log(),
            "Backup of src due at 03/12/2026 02:00 starts 10 h 0 min late"
        ),
        "{:#?}",
        home.service_log()
    );
    clock.set("2026-12-03 18:00:00");
    clock.service_once(&home);
    assert_eq!(runs(&home), 3);
    assert_eq!(next_run(&clock, &home), "04/12/2026 02:00");

    // A line without days stays daily: Saturday's run happens.
    let (code, _) = clock.manager(&home, &["create", "src;03:00;daily"]);
    assert_eq!(code, Some(0));
    clock.set("2026-12-05 03:00:05");
    clock.service_once(&home);
    assert_eq!(
        common::count_messages(
            &home.service_log(),
            "Backup done for src in backups/daily.tar"
        ),
        1
    );
    assert_eq!(runs(&home), 4, "Friday's wd was owed too");
}

#[test]
fn bad_days_are_refused_and_change_nothing() {
    let home = TestHome::new();
    for bad in ["weekdays", "Mon-Fri", "mon-", "mon fri"] {
        let out = home.manager(&["create", "--days", bad, "src;02:00;wd"]);
        assert_eq!(out.code(), Some(2), "{bad}: {out:?}");
        let out = home.manager(&["create", &format!("src;02:00;wd;days={bad}")]);
        let err = out.failure(1);
        assert!(
            err.contains(&format!("days={bad:?} is not a list of days")),
            "{err}"
        );
    }
    assert_eq!(home.schedule_bytes(), None);
}
