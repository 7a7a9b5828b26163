//! A clock that was wrong, then corrected, and a clock stepped back while the service
//! waits: the real binaries under libfaketime, with the time they see set by the test.
//!
//! Each test skips, saying so, when libfaketime is not installed (Debian: `faketime`);
//! `.ci/run` installs it so that they run in CI.

mod common;

use common::clock::{Clock, libfaketime};
use common::{TestHome, count_messages, has_message, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn write_state(home: &TestHome, records: &[(&str, &str, Option<&str>)]) {
    let schedules: serde_json::Map<String, serde_json::Value> = records
        .iter()
        .map(|(line, seen, served)| {
            let mut record = serde_json::json!({ "first_seen": seen });
            if let Some(served) = served {
                record["last_served"] = serde_json::json!(served);
            }
            (line.to_string(), record)
        })
        .collect();
    home.write(
        ".backup_state.json",
        serde_json::to_vec(&serde_json::json!({ "schedules": schedules })).unwrap(),
    );
}

const FUTURE: &str = "remembered times lie in the future";

/// How many log lines warn about times in the future.
fn future_warnings(log: &[String]) -> usize {
    log.iter().filter(|m| m.contains(FUTURE)).count()
}

#[test]
fn times_remembered_from_a_clock_years_ahead_are_taken_as_now() {
    let Some(lib) = libfaketime() else { return };
    let home = TestHome::new();
    home.write("src/a.txt", "a");
    home.write("backup_schedules.txt", "src;16:07;src\n");
    // Written in 2031 by a box whose RTC battery died, before NTP set the clock right.
    write_state(
        &home,
        &[(
            "src;16:07;src",
            "2031-05-01T09:00:00+00:00",
            Some("2031-05-01T16:07:00+00:00"),
        )],
    );
    let clock = Clock::new(lib, &home, "2026-06-01 16:05:00");

    // status tells the truth before the service has looked: today's 16:07.
    let (_, status) = clock.manager(&home, &["status"]);
    assert!(status.contains("next run:  01/06/2026 16:07"), "{status}");

    clock.service_once(&home);
    clock.service_once(&home);
    let log = home.service_log();
    assert_eq!(future_warnings(&log), 1, "{log:#?}");
    assert!(!has_message(&log, "Backup done"), "{log:#?}");

    // At 16:07 it runs, once.
    clock.set("2026-06-01 16:07:05");
    clock.service_once(&home);
    clock.set("2026-06-01 16:08:00");
    clock.service_once(&home);
    let log = home.service_log();
    assert_eq!(
        count_messages(&log, "Backup done for src in backups/src.tar"),
        1,
        "{log:#?}"
    );
    assert_eq!(future_warnings(&log), 1, "{log:#?}");
    assert!(home.archive_path("src.tar").exists());
    let (_, status) = clock.manager(&home, &["status"]);
    assert!(status.contains("next run:  02/06/2026 16:07"), "{status}");
}

#[test]
fn a_clock_stepped_back_an_hour_while_waiting_neither_repeats_nor_skips_a_run() {
    let Some(lib) = libfaketime() else { return };
    let home = TestHome::new();
    for name in ["a", "b", "c", "d"] {
        home.write(&format!("{name}/f.txt"), name);
    }
    home.write("backup_schedules.txt", "a;15:30;a\nb;16:07;b\nc;16:30;c\n");
    // a ran at 15:30 today; b and c ran yesterday.
    write_state(
        &home,
        &[
            (
                "a;15:30;a",
                "2026-05-01T09:00:00+00:00",
                Some("2026-06-01T15:30:00+00:00"),
            ),
            (
                "b;16:07;b",
                "2026-05-01T09:00:00+00:00",
                Some("2026-05-31T16:07:00+00:00"),
            ),
            (
                "c;16:30;c",
                "2026-05-01T09:00:00+00:00",
                Some("2026-05-31T16:30:00+00:00"),
            ),
        ],
    );
    let clock = Clock::new(lib, &home, "2026-06-01 16:06:57");
    let mut service = clock.spawn_service(&home);
    let pid = Pid::from_raw(service.id() as i32);
    let done = |name: &str| {
        count_messages(
            &home.service_log(),
            &format!("Backup done for {name} in backups/{name}.tar"),
        )
    };
    wait_for("b's backup at 16:07", || done("b") == 1);

    // An hour back, while the service waits; a new schedule proves it looked since.
    clock.set("2026-06-01 15:07:57");
    let (code, _) = clock.manager(&home, &["create", "d;15:08;d"]);
    assert_eq!(code, Some(0));
    wait_for("d's backup at 15:08", || done("d") == 1);

    // Then the hour passes again (skipped ahead here, and the service woken): c is owed
    // once, and neither a nor b again.
    clock.set("2026-06-01 16:30:05");
    kill(pid, Signal::SIGHUP).unwrap();
    wait_for("c's backup at 16:30", || done("c") == 1);
    kill(pid, Signal::SIGTERM).unwrap();
    assert!(service.wait().unwrap().success());
    let log = home.service_log();
    assert_eq!(
        (done("a"), done("b"), done("c"), done("d")),
        (0, 1, 1, 1),
        "{log:#?}"
    );
    assert_eq!(future_warnings(&log), 0, "{log:#?}");
}
